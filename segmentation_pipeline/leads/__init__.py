"""The leads domain: a CRM leads export in, ranked conversion personas, charts and a clustered CSV out.

Dagster-free core, in pipeline order (`pipeline.run_leads` runs them all):
`read_leads` -> `clean_leads` -> `segment_leads` -> `conversion_by_cluster` -> `fit_conversion_score`
-> `build_personas` -> `leads_dashboard` / `leads_pca` -> `clustered_leads_table`; the invariants are
the `*_problems` functions of `checks` and `scoring.score_feature_problems`.
"""

from segmentation_pipeline.leads.charts import leads_dashboard, leads_pca
from segmentation_pipeline.leads.cleaning import (
    CleanedLeads,
    clean_leads,
    lead_attributes,
)
from segmentation_pipeline.leads.conversion import (
    conversion_by_cluster,
    wilson_interval,
)
from segmentation_pipeline.leads.ingest import LeadsInput, read_leads
from segmentation_pipeline.leads.personas import build_personas, clustered_leads_table
from segmentation_pipeline.leads.pipeline import LeadsRun, run_leads
from segmentation_pipeline.leads.scoring import (
    ConversionScore,
    fit_conversion_score,
    score_feature_problems,
)
from segmentation_pipeline.leads.segmentation import LeadSegmentation, segment_leads
from segmentation_pipeline.leads.seniority import seniority_of
from segmentation_pipeline.leads.settings import LeadsSettings
from segmentation_pipeline.leads.synthetic import generate_leads, write_synthetic_leads

__all__ = [
    "CleanedLeads",
    "ConversionScore",
    "LeadSegmentation",
    "LeadsInput",
    "LeadsRun",
    "LeadsSettings",
    "build_personas",
    "clean_leads",
    "clustered_leads_table",
    "conversion_by_cluster",
    "fit_conversion_score",
    "generate_leads",
    "lead_attributes",
    "leads_dashboard",
    "leads_pca",
    "read_leads",
    "run_leads",
    "score_feature_problems",
    "segment_leads",
    "seniority_of",
    "wilson_interval",
    "write_synthetic_leads",
]

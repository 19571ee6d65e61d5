"""The whole leads core in pipeline order, in one call: what the Dagster assets do step by step, for
the benchmark, the tests and anyone using the core without Dagster.

read_leads -> clean_leads -> segment_leads -> conversion_by_cluster -> fit_conversion_score
-> build_personas -> leads_dashboard / leads_pca -> clustered_leads_table
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline.leads.charts import leads_dashboard, leads_pca
from segmentation_pipeline.leads.cleaning import CleanedLeads, clean_leads
from segmentation_pipeline.leads.conversion import conversion_by_cluster
from segmentation_pipeline.leads.ingest import LeadsInput, read_leads
from segmentation_pipeline.leads.personas import build_personas, clustered_leads_table
from segmentation_pipeline.leads.scoring import ConversionScore, fit_conversion_score
from segmentation_pipeline.leads.segmentation import LeadSegmentation, segment_leads
from segmentation_pipeline.leads.settings import LeadsSettings


@dataclass(frozen=True)
class LeadsRun:
    input: LeadsInput
    cleaned: CleanedLeads
    segmentation: LeadSegmentation
    conversion: pd.DataFrame
    score: ConversionScore
    personas: dict
    dashboard_png: bytes
    pca_png: bytes
    clustered: pd.DataFrame
    seconds: dict[str, float]  # wall seconds of each step, in pipeline order


def run_leads(settings: LeadsSettings, cache_dir: str | Path | None = None) -> LeadsRun:
    """Every leads output, in memory (nothing is written)."""
    clock = _StepClock()
    leads = clock("read", read_leads, settings, cache_dir)
    cleaned = clock("clean", clean_leads, leads.raw, settings, leads.source)
    segmentation = clock("segment", segment_leads, cleaned.clean, settings)
    is_sale = cleaned.clean["is_sale"].to_numpy()
    conversion = clock(
        "conversion", conversion_by_cluster, segmentation.labels, is_sale, segmentation.result.n_clusters, settings
    )
    score = clock("score", fit_conversion_score, segmentation.encoded, is_sale, settings)
    personas = clock("personas", build_personas, cleaned.clean, segmentation.labels, conversion, settings)
    dashboard = clock("dashboard_chart", leads_dashboard, personas)
    pca = clock("pca_chart", leads_pca, segmentation.encoded, segmentation.labels, personas)
    clustered = clock(
        "clustered_leads", clustered_leads_table, leads.raw, cleaned, segmentation, score, personas, settings
    )
    return LeadsRun(leads, cleaned, segmentation, conversion, score, personas, dashboard, pca, clustered, clock.seconds)


class _StepClock:
    """Calls a step and records its wall seconds under a name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name, step, *args):
        started = time.perf_counter()
        result = step(*args)
        self.seconds[name] = round(time.perf_counter() - started, 4)
        return result

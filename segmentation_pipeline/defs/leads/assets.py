"""Leads assets, one per step of `leads.pipeline.run_leads`: read, clean, segment, score, personas, charts.

Python results pass between steps through the object IO manager (stored in the set, so the checks and
a partial run read them); the files readers use are written through `layout` into the run's staging
folder and recorded with `record_outputs`.
"""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import adjusted_rand_score

from segmentation_pipeline import layout
from segmentation_pipeline.leads.charts import leads_dashboard, leads_pca
from segmentation_pipeline.leads.cleaning import CleanedLeads, clean_leads
from segmentation_pipeline.leads.conversion import conversion_by_cluster
from segmentation_pipeline.leads.ingest import LeadsInput, read_leads
from segmentation_pipeline.leads.personas import build_personas, clustered_leads_table
from segmentation_pipeline.leads.scoring import ConversionScore, fit_conversion_score
from segmentation_pipeline.leads.segmentation import LeadSegmentation, segment_leads
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.metadata import (
    numeric_metadata,
    table_metadata,
)
from segmentation_pipeline.orchestration.resources import (
    PipelineSettings,
    record_charts,
    record_outputs,
)
from segmentation_pipeline.storage import (
    atomic_path,
    atomic_write_text,
    write_csv,
    write_parquet,
)

GROUP = "leads"
LEAD_ID = "lead_id"  # the input row (`source_row`) in the lead feature table the service reads
SCORE_METRICS = ("roc_auc", "pr_auc", "brier", "brier_base_rate", "base_rate")


def _leads_settings(settings: PipelineSettings):
    return settings.config.leads_settings()


@dg.asset(
    name="raw_leads",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"pandas"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    description=(
        "The leads table exactly as read, every row and column under the file's own names (`leads:` in the "
        "config): a CSV/TXT (any delimiter and encoding), xlsx or parquet export, or the embedded persona-driven "
        "synthetic leads with their true persona per row (the ground truth of `lead_segments`). Every mapped "
        "and feature column is checked here: a missing one stops the run with one message naming it."
    ),
)
def raw_leads(context: dg.AssetExecutionContext, settings: PipelineSettings) -> LeadsInput:
    leads = read_leads(_leads_settings(settings), settings.cache_dir())
    record_outputs(
        context,
        settings,
        [layout.stored_object("raw_leads")],  # the table as read, kept for the steps and checks downstream
        leads.raw,
        unit="leads",
        source=leads.source,
        ground_truth="synthetic lead personas" if leads.truth is not None else "none (real data)",
    )
    return leads


@dg.multi_asset(
    group_name=GROUP,
    ins={"leads": dg.AssetIn("raw_leads")},
    outs={
        "cleaned_leads": dg.AssetOut(
            io_manager_key="object_io_manager",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            kinds={"pandas"},
            owners=OWNERS,
            description=(
                "Leads with a readable outcome, under canonical names: `source_row`, state, industry, job title, "
                "education, age range and years of experience (numbers binned into ordered ranges), gender, lead "
                "source, `seniority` read from the title, the configured extra features, `is_sale` (bool). Missing "
                "and placeholder values (`Select`, `N/A`, `-`, empty, ...) are `Unknown`."
            ),
        ),
        "rejected_leads": dg.AssetOut(
            io_manager_key="object_io_manager",
            automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
            kinds={"pandas", "csv"},
            owners=OWNERS,
            description=(
                "Raw leads whose outcome is missing or not one of TRUE/FALSE, true/false, 1/0, yes/no, Y/N: every "
                f"column of the row, `source_row` and `reject_reason`. Raw = cleaned + rejected. File: `{layout.LEADS_REJECTED}`."
            ),
        ),
    },
)
def clean_lead_rows(context: dg.AssetExecutionContext, settings: PipelineSettings, leads: LeadsInput):
    cleaned = clean_leads(leads.raw, _leads_settings(settings), leads.source)
    staging = settings.staging(context.run.run_id)
    _write_csv(cleaned.rejected, staging.path(layout.LEADS_REJECTED))
    stored = layout.stored_object("cleaned_leads")  # written by the object IO manager
    staging.record("cleaned_leads", [stored], len(cleaned.clean))
    staging.record("rejected_leads", [layout.LEADS_REJECTED], len(cleaned.rejected))
    yield dg.Output(
        cleaned.clean,
        "cleaned_leads",
        metadata={
            **table_metadata(cleaned.clean, [stored], "leads"),
            "conversions": int(cleaned.clean["is_sale"].sum()),
            "metric/conversion_rate": float(cleaned.clean["is_sale"].mean()) if len(cleaned.clean) else 0.0,
            "seniority": dg.MetadataValue.json(_counts(cleaned.clean["seniority"])),
        },
    )
    reasons = _counts(cleaned.rejected["reject_reason"]) if len(cleaned.rejected) else {}
    yield dg.Output(
        cleaned.rejected,
        "rejected_leads",
        metadata={
            **table_metadata(cleaned.rejected, [layout.LEADS_REJECTED], "leads"),
            "rows_per_reason": dg.MetadataValue.json(reasons),
            "metric/rejected_share": len(cleaned.rejected) / len(leads.raw) if len(leads.raw) else 0.0,
        },
    )


@dg.asset(
    name="lead_segments",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"scikitlearn"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    ins={"cleaned": dg.AssetIn("cleaned_leads"), "leads": dg.AssetIn("raw_leads")},
    description=(
        "k-means on the encoded clean leads (nominal columns one-hot on a bounded chi-square scale, ordinal ones "
        "- age, experience, seniority - as ordered positions), through the shared clustering driver: `k` fixed "
        "(4, the reference's count) or `auto` by silhouette, labels by size, bootstrap stability. Metadata: k and "
        "the selection curve, silhouette, stability and, on the synthetic leads, the ARI against the true lead "
        f"personas. Files: the model bundle `{layout.LEADS_BUNDLE}` (`predict` on canonical lead fields) and "
        f"`{layout.LEAD_FEATURES}` (`{LEAD_ID}` + every encoded column: what the REST service's `/leads/segment` serves)."
    ),
)
def lead_segments(
    context: dg.AssetExecutionContext, settings: PipelineSettings, cleaned: pd.DataFrame, leads: LeadsInput
) -> LeadSegmentation:
    segmentation = segment_leads(cleaned, _leads_settings(settings))
    result = segmentation.result
    staging = settings.staging(context.run.run_id)
    segmentation.bundle.save(staging.path(layout.LEADS_BUNDLE))
    features = pd.DataFrame(segmentation.encoded, columns=segmentation.encoder.columns)
    features.insert(0, LEAD_ID, cleaned["source_row"].to_numpy())
    write_parquet(features, staging.path(layout.LEAD_FEATURES))
    metrics = dict(result.metrics)
    if leads.truth is not None:
        truth = leads.truth.set_index("source_row").loc[cleaned["source_row"], "persona"]
        metrics["ari_vs_truth"] = float(adjusted_rand_score(truth.astype(str), segmentation.labels))
    record_outputs(
        context,
        settings,
        [layout.LEADS_BUNDLE, layout.LEAD_FEATURES],
        features,
        unit="leads",
        k=result.n_clusters,
        k_source=str(result.params.get("k_source")),
        cluster_sizes=dg.MetadataValue.json(np.bincount(segmentation.labels).tolist()),
        parameters=dg.MetadataValue.json(result.params),
        selection_curve=dg.MetadataValue.json(result.selection_curve),
        encoding=dg.MetadataValue.json(segmentation.encoder.describe()),
        fit_warnings=dg.MetadataValue.json(result.warnings),
        **numeric_metadata(metrics),
    )
    return segmentation


@dg.asset(
    name="lead_conversion_score",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"scikitlearn"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    ins={"cleaned": dg.AssetIn("cleaned_leads"), "segmentation": dg.AssetIn("lead_segments")},
    description=(
        "A per-lead conversion score: logistic regression on the clustering features, sigmoid-calibrated on "
        "out-of-fold decision values (stratified, seeded folds). Out-of-fold ROC-AUC, PR-AUC and Brier score "
        "(with the base rate's Brier for comparison) as `metric/*`. No feature may be derived from the "
        "outcome: names known only after it are refused at config load and checked again here."
    ),
)
def lead_conversion_score(
    context: dg.AssetExecutionContext, settings: PipelineSettings, cleaned: pd.DataFrame, segmentation: LeadSegmentation
) -> ConversionScore:
    score = fit_conversion_score(segmentation.encoded, cleaned["is_sale"].to_numpy(), _leads_settings(settings))
    scores = pd.DataFrame({LEAD_ID: cleaned["source_row"].to_numpy(), "conversion_score": score.scores})
    metrics = {name: score.metrics.get(name) for name in SCORE_METRICS}
    record_outputs(
        context,
        settings,
        [layout.stored_object("lead_conversion_score")],  # the scorer and every clean lead's score
        scores,
        unit="leads",
        score=dg.MetadataValue.json(score.metrics),
        **numeric_metadata(metrics),
    )
    return score


@dg.asset(
    name="lead_personas",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"pandas", "json", "csv"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    ins={
        "leads": dg.AssetIn("raw_leads"),
        "cleaned": dg.AssetIn("cleaned_leads"),
        "rejected": dg.AssetIn("rejected_leads"),
        "segmentation": dg.AssetIn("lead_segments"),
        "score": dg.AssetIn("lead_conversion_score"),
    },
    description=(
        "Conversion per cluster (rate, conversions, non-conversions, total, 95% Wilson interval, lift over the "
        "overall rate, value tier by the configured thresholds; a cluster below `min_cluster_size` is flagged, "
        "not tiered) and one persona per cluster ranked by conversion rate, with a data-driven unique name, "
        "demographics, geography, professional profile and lead sources. Files: "
        f"`{layout.LEADS_PERSONAS}`, `{layout.LEADS_CONVERSION}` and `{layout.LEADS_CLUSTERED}` (every input row, "
        "same order, plus `Cluster`, `Persona` and `conversion_score`)."
    ),
)
def lead_personas(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    leads: LeadsInput,
    cleaned: pd.DataFrame,
    rejected: pd.DataFrame,
    segmentation: LeadSegmentation,
    score: ConversionScore,
) -> dict:
    section = _leads_settings(settings)
    labels = segmentation.labels
    conversion = conversion_by_cluster(labels, cleaned["is_sale"].to_numpy(), segmentation.result.n_clusters, section)
    personas = build_personas(cleaned, labels, conversion, section)
    clustered = clustered_leads_table(leads.raw, CleanedLeads(cleaned, rejected), segmentation, score, personas, section)
    names = {p["cluster_id"]: p["persona_name"] for p in personas["personas"]}
    conversion.insert(1, "persona_name", conversion["cluster"].map(names))
    staging = settings.staging(context.run.run_id)
    atomic_write_text(staging.path(layout.LEADS_PERSONAS), json.dumps(personas, indent=2, ensure_ascii=False))
    write_parquet(conversion, staging.path(layout.LEADS_CONVERSION))
    _write_csv(clustered, staging.path(layout.LEADS_CLUSTERED))
    record_outputs(
        context,
        settings,
        [layout.LEADS_PERSONAS, layout.LEADS_CONVERSION, layout.LEADS_CLUSTERED],
        conversion,
        unit="personas",
        personas=dg.MetadataValue.md(_personas_markdown(personas)),
        clustered_leads=len(clustered),
        **numeric_metadata({"overall_conversion_rate": personas["overall_conversion_rate"], "personas": len(names)}),
    )
    return personas


@dg.asset(
    name="lead_charts",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"matplotlib"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    ins={"segmentation": dg.AssetIn("lead_segments"), "personas": dg.AssetIn("lead_personas")},
    description=(
        "The leads dashboard (1400x1000: leads per persona, conversion rate with its 95% interval and the "
        "overall rate, conversions, seniority mix) and the PCA map of the encoded leads (1000x700, explained "
        "variance on the axes, persona names in the legend), PNG at 150 dpi, embedded below: "
        + ", ".join(f"`{layout.chart(layout.LEADS_CHART_PREFIX, name)}`" for name in layout.LEADS_CHARTS)
        + "."
    ),
)
def lead_charts(
    context: dg.AssetExecutionContext, settings: PipelineSettings, segmentation: LeadSegmentation, personas: dict
) -> dict[str, bytes]:
    pngs = {
        "dashboard": leads_dashboard(personas),
        "pca": leads_pca(segmentation.encoded, segmentation.labels, personas),
    }
    return record_charts(context, settings, layout.LEADS_CHART_PREFIX, pngs)


# --- helpers -------------------------------------------------------------------------------------


def _write_csv(table: pd.DataFrame, path) -> None:
    """pyarrow's fast writer; pandas' for raw columns pyarrow cannot type (mixed values in one column)."""
    try:
        write_csv(table, path)
    except (pa.ArrowException, TypeError, ValueError):
        with atomic_path(path) as temp:
            table.to_csv(temp, index=False)


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(value): int(count) for value, count in values.value_counts(sort=True).items() if count}


def _personas_markdown(personas: dict) -> str:
    rows = [
        {
            "rank": p["rank"],
            "persona": p["persona_name"],
            "leads": p["cluster_size"],
            "conversion": f"{p['conversion_metrics']['conversion_rate']:.1%} "
            f"({p['conversion_metrics']['ci_low']:.1%}-{p['conversion_metrics']['ci_high']:.1%})",
            "tier": p["conversion_metrics"]["value_tier"] or "small sample",
            "lift": p["conversion_metrics"]["lift"],
        }
        for p in sorted(personas["personas"], key=lambda p: p["rank"])
    ]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "no persona"

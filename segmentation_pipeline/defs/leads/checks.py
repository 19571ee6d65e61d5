"""Leads asset checks: thin wrappers over the core's `*_problems` functions (`leads.checks`,
`leads.scoring.score_feature_problems`), reading the files and results the run stored (else the
published ones), so they also run on their own (`segmentation-pipeline check`). All are blocking: a
broken invariant stops publication."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import charts, layout
from segmentation_pipeline.leads import checks
from segmentation_pipeline.leads.cleaning import CleanedLeads
from segmentation_pipeline.leads.scoring import score_feature_problems
from segmentation_pipeline.orchestration.metadata import check_result
from segmentation_pipeline.orchestration.resources import PipelineSettings, load_object

RAW, CLEANED, REJECTED = "raw_leads", "cleaned_leads", "rejected_leads"
SEGMENTS, SCORE, PERSONAS, CHARTS = "lead_segments", "lead_conversion_score", "lead_personas", "lead_charts"



@dg.asset_check(
    asset=CLEANED,
    name="raw_equals_clean_plus_rejected",
    blocking=True,
    additional_deps=[RAW, REJECTED],
    description="Every raw lead is in exactly one of cleaned_leads and rejected_leads, and every rejected lead has a reason.",
)
def raw_equals_clean_plus_rejected(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
    run_id = context.run.run_id
    raw = load_object(settings, RAW, run_id).raw
    cleaned = CleanedLeads(load_object(settings, CLEANED, run_id), load_object(settings, REJECTED, run_id))
    return check_result(
        "raw_equals_clean_plus_rejected", CLEANED, checks.split_problems(raw, cleaned),
        raw=len(raw), clean=len(cleaned.clean), rejected=len(cleaned.rejected),
    )


@dg.asset_check(
    asset=SCORE,
    name="no_outcome_derived_feature",
    blocking=True,
    additional_deps=[CLEANED, SEGMENTS],
    description=(
        "No feature of the segments and the score is the outcome, is named like a value known only after it "
        "(call duration, deal stage, ...), or separates conversions from non-conversions almost perfectly alone."
    ),
)
def no_outcome_derived_feature(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
    run_id = context.run.run_id
    features = load_object(settings, SEGMENTS, run_id).encoder.source_columns
    clean = load_object(settings, CLEANED, run_id)
    problems = score_feature_problems(features, clean, settings.config.leads_settings())
    return check_result("no_outcome_derived_feature", SCORE, problems, features=dg.MetadataValue.json(features))


@dg.multi_asset_check(
    name="lead_persona_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "conversions_sum_to_total", asset=PERSONAS, blocking=True, additional_deps=[CLEANED],
            description="Per cluster conversions + non-conversions = total; totals and conversions add up to the "
            "clean leads; each rate lies inside its Wilson interval.",
        ),
        dg.AssetCheckSpec(
            "assignments_exclusive_and_complete", asset=PERSONAS, blocking=True, additional_deps=[RAW],
            description="clustered_leads.csv has every input lead once, in order, with exactly one cluster in 0..k-1, "
            "and no cluster is empty.",
        ),
        dg.AssetCheckSpec(
            "persona_counts_and_percentages", asset=PERSONAS, blocking=True, additional_deps=[SEGMENTS],
            description="One persona per cluster whose count equals the cluster's size, unique names, ranks by "
            "conversion rate, and every percentage (cluster shares, mixes, lead sources) adding up to 100.",
        ),
        dg.AssetCheckSpec(
            "tiers_match_thresholds", asset=PERSONAS, blocking=True,
            description="Each persona's value tier is the one its conversion rate falls in under the configured "
            "thresholds; a cluster below min_cluster_size has no tier.",
        ),
    ],
)
def lead_persona_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    run_id = context.run.run_id
    selected = {key.name for key in context.selected_asset_check_keys}
    personas = json.loads(settings.locate(layout.LEADS_PERSONAS, run_id).read_text(encoding="utf-8"))
    conversion = pd.read_parquet(settings.locate(layout.LEADS_CONVERSION, run_id))
    if "conversions_sum_to_total" in selected:
        clean = load_object(settings, CLEANED, run_id)
        yield check_result(
            "conversions_sum_to_total", PERSONAS, checks.conversion_problems(conversion, clean),
            conversions=int(conversion["conversions"].sum()), total=int(conversion["total_records"].sum()),
        )
    if "assignments_exclusive_and_complete" in selected:
        raw_rows = len(load_object(settings, RAW, run_id).raw)
        clustered = pd.read_csv(settings.locate(layout.LEADS_CLUSTERED, run_id), usecols=["Cluster"])
        yield check_result(
            "assignments_exclusive_and_complete", PERSONAS, checks.assignment_problems(clustered, raw_rows, len(conversion)),
            leads=len(clustered), clusters=len(conversion),
        )
    if "persona_counts_and_percentages" in selected:
        labels = load_object(settings, SEGMENTS, run_id).labels
        yield check_result(
            "persona_counts_and_percentages", PERSONAS, checks.persona_problems(personas, labels),
            personas=len(personas["personas"]),
        )
    if "tiers_match_thresholds" in selected:
        yield check_result(
            "tiers_match_thresholds", PERSONAS, checks.tier_problems(personas, settings.config.leads_settings()),
            tiers=dg.MetadataValue.json({p["persona_name"]: p["conversion_metrics"]["value_tier"] for p in personas["personas"]}),
        )


@dg.asset_check(
    asset=CHARTS,
    name="lead_pngs_valid_at_documented_size",
    blocking=True,
    description="Both lead charts are valid PNGs at their documented pixel size (dashboard 1400x1000, PCA 1000x700).",
)
def lead_pngs_valid_at_documented_size(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
    problems = []
    for name in layout.LEADS_CHARTS:
        relative = layout.chart(layout.LEADS_CHART_PREFIX, name)
        expected = charts.CHART_SIZES[f"{layout.LEADS_CHART_PREFIX}_{name}"]
        try:
            size = charts.png_size(settings.locate(relative, context.run.run_id).read_bytes())
        except (FileNotFoundError, ValueError) as exc:
            problems.append(f"{relative}: {exc}")
            continue
        if size != expected:
            problems.append(f"{relative}: {size[0]}x{size[1]} px, documented {expected[0]}x{expected[1]}")
    return check_result("lead_pngs_valid_at_documented_size", CHARTS, problems)

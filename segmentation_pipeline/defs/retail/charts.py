"""Chart and report stage: PNGs shown in the Dagster UI and written to disk, and the HTML report."""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from segmentation_pipeline import charts, layout, report
from segmentation_pipeline.clustering import METHODS, ClusteringResult
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.resources import (
    PipelineSettings,
    record_charts,
    record_outputs,
    record_skipped,
)
from segmentation_pipeline.retail.personas import persona_columns


def _method_charts(result: ClusteringResult, features: pd.DataFrame, personas: dict) -> dict[str, bytes]:
    drawn: dict[str, Callable[[], bytes]] = {
        "scatter": lambda: charts.cluster_scatter(result, personas),
        "dashboard": lambda: charts.cluster_dashboard(result, features, personas),
    }
    if result.memberships is not None:
        drawn["membership_histogram"] = lambda: charts.membership_histogram(result)
    return {name: draw() for name, draw in drawn.items()}


def _charts_asset(method: str) -> dg.AssetsDefinition:
    @dg.asset(
        automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        name=f"{method}_charts",
        group_name="charts",
        io_manager_key="object_io_manager",
        kinds={"matplotlib"},
        owners=OWNERS,
        ins={"fitted": dg.AssetIn(method), "personas": dg.AssetIn(f"{method}_personas")},
        deps=["customer_features_enriched"],
        description=(
            f"Charts of `{method}` (one colour per cluster in every chart): PCA scatter by cluster with "
            "centroids, persona names in the legend and hdbscan noise marked (1000x700), a dashboard of sizes, "
            "revenue vs customer share, mean R/F/M and value tiers (1400x1000), and for soft methods the "
            f"membership histogram (1000x700); PNG at 150 dpi under `{layout.chart(method, '*')}`."
        ),
    )
    def _charts(
        context: dg.AssetExecutionContext,
        settings: PipelineSettings,
        fitted,  # MethodRuns, or SkippedMethod when the method did not run
        personas,  # a dict, or SkippedMethod
    ):  # {name: PNG bytes}, or SkippedMethod
        if isinstance(fitted, SkippedMethod):
            return record_skipped(context, settings, fitted)
        features = settings.read_table("customer_features_enriched", context.run.run_id, persona_columns)
        return record_charts(context, settings, method, _method_charts(fitted.result, features, personas))

    return _charts


chart_assets = [_charts_asset(method) for method in METHODS]


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    group_name="charts",
    io_manager_key="object_io_manager",
    kinds={"matplotlib"},
    owners=OWNERS,
    ins={"rfm_table": dg.AssetIn("rfm"), **{method: dg.AssetIn(method) for method in METHODS}},
    description=(
        "Pipeline-level charts: RFM distributions, named RFM segment sizes, model-selection curves "
        f"(silhouette and BIC vs k) and the method comparison; PNG under `{layout.chart('pipeline', '*')}`."
    ),
)
def pipeline_charts(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    rfm_table: pd.DataFrame,
    method_comparison: dict,
    **results,  # MethodRuns or SkippedMethod per method
) -> dict[str, bytes]:
    fitted = {method: runs.result for method, runs in results.items() if not isinstance(runs, SkippedMethod)}
    pngs = {
        "rfm_distributions": charts.rfm_distributions(rfm_table),
        "segment_sizes": charts.segment_sizes(rfm_table),
        "selection_curves": charts.selection_curves(fitted),
        "method_comparison": charts.method_comparison_chart(method_comparison, method_comparison["recommended_run"]),
    }
    return record_charts(context, settings, "pipeline", pngs)


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    name="report",
    group_name="charts",
    kinds={"html"},
    owners=OWNERS,
    io_manager_key="object_io_manager",
    ins={
        "pipeline_charts": dg.AssetIn("pipeline_charts"),
        **{f"{m}_personas": dg.AssetIn(f"{m}_personas") for m in METHODS},
        **{f"{m}_charts": dg.AssetIn(f"{m}_charts") for m in METHODS},
        **{f"{m}_profile": dg.AssetIn(f"{m}_profile") for m in METHODS},
        "lead_personas": dg.AssetIn("lead_personas"),
        "lead_charts": dg.AssetIn("lead_charts"),
    },
    description=(
        f"`{layout.REPORT}`: one self-contained page (images embedded, no network) with the method comparison, "
        "persona cards of the recommended method ranked by value, per-method sections, the lead personas ranked "
        "by conversion with the leads charts, and links to the files."
    ),
)
def report_html(
    context: dg.AssetExecutionContext, settings: PipelineSettings, method_comparison: dict, **inputs
) -> dict:
    fitted = [m for m in METHODS if not isinstance(inputs[f"{m}_personas"], SkippedMethod)]
    personas_by_method = {m: inputs[f"{m}_personas"] for m in fitted}
    all_charts = dict(inputs["pipeline_charts"])
    for method in fitted:
        all_charts.update(inputs[f"{method}_charts"])
    narratives = {m: inputs[f"{m}_profile"]["llm_narrative"] for m in fitted}
    links = {"Method comparison (JSON)": layout.METHOD_COMPARISON_JSON}
    for method in fitted:
        links[f"{method} profile (JSON)"] = layout.cluster_profile(method, "json")
        links[f"{method} profile (YAML)"] = layout.cluster_profile(method, "yaml")
        links[f"{method} LLM prompt"] = layout.llm_prompt(method)
        if narratives[method]["text"]:
            links[f"{method} LLM narrative"] = layout.llm_narrative(method)
        links[f"{method} personas (JSON)"] = layout.personas_json(method)
        links[f"{method} clustered customers (CSV)"] = layout.clustered_customers_csv(method)
    links["Lead personas (JSON)"] = layout.LEADS_PERSONAS
    links["Clustered leads (CSV)"] = layout.LEADS_CLUSTERED
    html = report.build_report(
        method_comparison,
        personas_by_method,
        all_charts,
        links,
        recommended=method_comparison["recommended"],
        narratives=narratives,
        leads={"personas": inputs["lead_personas"], "charts": inputs["lead_charts"]},
    )
    report.write_report(html, settings.staging(context.run.run_id).path(layout.REPORT))
    references = report.report_references(html)
    summary = pd.DataFrame({"persona": references["personas"]})
    published_at = settings.config.output_path() / layout.REPORT
    record_outputs(
        context,
        settings,
        [layout.REPORT],
        summary,
        unit="personas",
        charts_embedded=len(references["charts"]),
        path=dg.MetadataValue.path(str(published_at)),
    )
    return {"recommended": method_comparison["recommended"], "charts": sorted(all_charts)}

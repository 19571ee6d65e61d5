"""Asset checks: blocking ones stop everything downstream of a table that broke an invariant.

Checks read what the assets stored, so they run with their asset and also on their own (the
checks-only job). Each stage's checks share one step (a multi-asset check that can run any subset):
every step costs Dagster bookkeeping, and a stage's checks need the same inputs anyway.
"""

import json

import dagster as dg
import pandas as pd
import yaml

from segmentation_pipeline import charts, layout
from segmentation_pipeline import report as reporting
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.comparison import STABILITY_THRESHOLD
from segmentation_pipeline.orchestration.metadata import check_result
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings, load_object
from segmentation_pipeline.retail import personas, profiles, validation
from segmentation_pipeline.orchestration.monthly import MonthlyTable
from segmentation_pipeline.retail.cleaning import merged_reasons_summary, rejected_reasons_summary
from segmentation_pipeline.storage import read_parquet
from segmentation_pipeline.yaml_data import SAFE_LOADER

MONTHLY_TABLES = ("raw_transactions", "cleaned_transactions", "rejected_transactions")
FEATURE_TABLES = ("rfm", "customer_features_basic", "customer_features_enriched")
CHART_ASSETS = (*(f"{m}_charts" for m in METHODS), "pipeline_charts")
REPORT_INPUTS = (*CHART_ASSETS, *(f"{m}_personas" for m in METHODS))
CHART_KIND = {
    "scatter": "cluster_scatter",
    "dashboard": "cluster_dashboard",
    "membership_histogram": "membership_histogram",
    "rfm_distributions": "rfm_distributions",
    "segment_sizes": "segment_sizes",
    "selection_curves": "selection_curves",
    "method_comparison": "method_comparison",
}



def _selected(context: dg.AssetCheckExecutionContext) -> set[tuple[str, str]]:
    return {(key.asset_key.to_user_string(), key.name) for key in context.selected_asset_check_keys}


class _Stored:
    """What a check reads: the files its run wrote, else the published ones; monthly tables over the
    months now in the data (a month that left the log is not counted)."""

    def __init__(self, context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
        self.settings, self.run_id = settings, context.run.run_id
        self.months = context.instance.get_dynamic_partitions(transaction_months.name)

    def path(self, relative: str):
        return self.settings.locate(relative, self.run_id)

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return read_parquet(self.path(layout.table(name)), columns)

    def monthly(self, name: str) -> MonthlyTable:
        return MonthlyTable(self.settings, name, self.run_id)

    def rows_per_month(self, name: str) -> dict[str, int]:
        return self.monthly(name).rows_per_month(self.months)

    def month_by_month(self, name: str, problems, columns: list[str] | None = None) -> list[str]:
        """`problems(frame)` of each month of a monthly table in turn (one month in memory), each
        problem prefixed with its month."""
        return [
            f"{month}: {problem}"
            for month, frame in self.monthly(name).months(self.months, columns)
            for problem in problems(frame)
        ]

    def object(self, asset: str):
        return load_object(self.settings, asset, self.run_id)

    def text(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")


# --- ingest and clean --------------------------------------------------------------------------


@dg.asset_check(asset="raw_transactions", blocking=True, description="Required mapped columns exist and parse.")
def required_columns_parseable(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
    stored = _Stored(context, settings)
    raw = stored.monthly("raw_transactions")
    columns = raw.columns(stored.months[0]) if stored.months else []
    rows = sum(raw.rows_per_month(stored.months).values())
    missing = sum(int(frame["timestamp"].isna().sum()) for _, frame in raw.months(stored.months, ["timestamp"])) if "timestamp" in columns else 0
    problems = validation.raw_table_problems(columns, rows, missing)
    return check_result("required_columns_parseable", "raw_transactions", problems, rows=rows)


@dg.multi_asset_check(
    name="clean_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "raw_rows_accounted_for",
            asset="cleaned_transactions",
            blocking=True,
            additional_deps=["raw_transactions", "rejected_transactions"],
            description="Every month: raw rows = cleaned rows + rejected rows (nothing silently dropped).",
        ),
        dg.AssetCheckSpec(
            "cleaned_rows_valid",
            asset="cleaned_transactions",
            blocking=True,
            description="No missing customer, quantity non-zero (negative only on returns), unit price positive.",
        ),
        dg.AssetCheckSpec(
            "rejected_share_within_limit",
            asset="rejected_transactions",
            blocking=True,
            additional_deps=["raw_transactions"],
            description=(
                "Fails the run when more than `transactions.max_rejected_share` of the raw rows were rejected "
                "(a wrong mapping or a broken export), naming the top reasons with example values."
            ),
        ),
    ],
)
def clean_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    stored = _Stored(context, settings)
    selected = _selected(context)
    counts = {name: stored.rows_per_month(name) for name in MONTHLY_TABLES}
    totals = {f"{name}_rows": sum(c.values()) for name, c in counts.items()}
    if ("cleaned_transactions", "raw_rows_accounted_for") in selected:
        problems = validation.accounting_problems(*counts.values())
        yield check_result("raw_rows_accounted_for", "cleaned_transactions", problems, **totals)
    if ("cleaned_transactions", "cleaned_rows_valid") in selected:
        problems = stored.month_by_month(
            "cleaned_transactions", validation.cleaned_table_problems, list(validation.CLEANED_CHECKED_COLUMNS)
        )
        yield check_result("cleaned_rows_valid", "cleaned_transactions", problems)
    if ("rejected_transactions", "rejected_share_within_limit") in selected:
        raw_rows = totals["raw_transactions_rows"]
        summary = merged_reasons_summary(
            [rejected_reasons_summary(frame, raw_rows) for _, frame in stored.monthly("rejected_transactions").months(stored.months)],
            raw_rows,
        )
        limit = settings.config.transactions.max_rejected_share
        yield check_result(
            "rejected_share_within_limit",
            "rejected_transactions",
            validation.rejected_share_problems(summary, raw_rows, limit),
            rejected_share=validation.rejected_share(raw_rows, totals["rejected_transactions_rows"]),
            max_rejected_share=limit,
            top_reasons=dg.MetadataValue.json([reason.describe() for reason in summary[:5]]),
        )


# --- features ----------------------------------------------------------------------------------


def _feature_table_check(table: str) -> dg.AssetChecksDefinition:
    """One check per table: the three feature tables depend on each other, so one shared step would
    have to wait for the last of them while blocking the first."""

    @dg.asset_check(
        asset=table,
        name="one_row_per_customer_no_nulls",
        blocking=True,
        description="One row per customer, no missing values in numeric columns, recency >= 0.",
    )
    def _check(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
        frame = _Stored(context, settings).table(table)
        problems = validation.feature_table_problems(frame)
        return check_result("one_row_per_customer_no_nulls", table, problems, rows=len(frame))

    return _check


feature_checks = [_feature_table_check(table) for table in FEATURE_TABLES]


# --- models ------------------------------------------------------------------------------------


@dg.multi_asset_check(
    name="model_checks",
    can_subset=True,
    specs=[
        spec
        for method in METHODS
        for spec in (
            dg.AssetCheckSpec(
                "every_customer_assigned", asset=method, blocking=True, additional_deps=["customer_features_basic"]
            ),
            dg.AssetCheckSpec("k_within_bounds", asset=method, blocking=True),
            dg.AssetCheckSpec("no_empty_cluster", asset=method, blocking=True),
            dg.AssetCheckSpec(
                "stable_under_bootstrap",
                asset=method,
                blocking=False,
                description=f"Warns when the mean bootstrap ARI is below {STABILITY_THRESHOLD}.",
            ),
        )
    ],
)
def model_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    selected = _selected(context)
    clustering = settings.config.clustering_settings()
    stored = _Stored(context, settings)
    customers = stored.table("customer_features_basic", columns=["customer_id"])["customer_id"]
    for method in sorted({asset for asset, _ in selected}):
        fitted = stored.object(method)
        if isinstance(fitted, SkippedMethod):
            yield from _skipped(selected, method, fitted)
            continue
        result = fitted.result
        bounds = clustering.for_method(method)
        found = {
            "every_customer_assigned": validation.unassigned_customers(result.labels, result.customer_ids, customers),
            "k_within_bounds": validation.cluster_count_problems(
                result.n_clusters, bounds.k_min, bounds.k_max, METHODS[method].chooses_k
            ),
            "no_empty_cluster": validation.empty_cluster_problems(result.labels, result.n_clusters),
        }
        for name, problems in found.items():
            if (method, name) in selected:
                yield check_result(name, method, problems)
        if (method, "stable_under_bootstrap") in selected:
            yield _stability(method, result)


def _skipped(selected: set[tuple[str, str]], asset: str, skipped: SkippedMethod):
    """A method that did not run has nothing to check: its checks pass and say why."""
    for selected_asset, check in sorted(selected):
        if selected_asset == asset:
            yield dg.AssetCheckResult(
                check_name=check, asset_key=asset, passed=True,
                description=f"skipped: {skipped.reason}", metadata={"skipped": skipped.reason},
            )


def _stability(method: str, result) -> dg.AssetCheckResult:
    stability = float(result.metrics.get("stability_ari_mean", float("nan")))
    problems = [] if stability >= STABILITY_THRESHOLD else [validation.stability_problem(stability, result.params)]
    return check_result(
        "stable_under_bootstrap",
        method,
        problems,
        severity=dg.AssetCheckSeverity.WARN,
        stability_ari_mean=stability,
    )


# --- profiles and personas ---------------------------------------------------------------------


@dg.multi_asset_check(
    name="profile_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "profile_adds_up_and_files_valid",
            asset=f"{method}_profile",
            blocking=True,
            description="Sizes sum to n_samples, percentages to 100 (±0.1); the JSON and YAML files parse and are equal.",
        )
        for method in METHODS
    ],
)
def profile_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    stored = _Stored(context, settings)
    for asset, check in sorted(_selected(context)):
        method = asset.removesuffix("_profile")
        if isinstance(skipped := stored.object(asset), SkippedMethod):
            yield from _skipped({(asset, check)}, asset, skipped)
            continue
        try:
            from_json = json.loads(stored.text(layout.cluster_profile(method, "json")))
            from_yaml = yaml.load(stored.text(layout.cluster_profile(method, "yaml")), Loader=SAFE_LOADER)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            yield check_result(check, asset, [f"profile files unreadable: {exc}"])
            continue
        problems = profiles.validate_profile(from_json)
        if from_yaml != from_json:
            problems.append("the YAML profile does not load back equal to the JSON profile")
        yield check_result(check, asset, problems)


@dg.multi_asset_check(
    name="persona_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "one_valid_persona_per_cluster",
            asset=f"{method}_personas",
            blocking=True,
            additional_deps=[method],
            description="Persona count equals cluster count; names unique; value tiers match their thresholds.",
        )
        for method in METHODS
    ],
)
def persona_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    stored = _Stored(context, settings)
    for asset, check in sorted(_selected(context)):
        method = asset.removesuffix("_personas")
        built = stored.object(asset)
        if isinstance(built, SkippedMethod):
            yield from _skipped({(asset, check)}, asset, built)
            continue
        result = stored.object(method).result
        yield check_result(check, asset, personas.validate_personas(built, result.n_clusters))


# --- charts and report -------------------------------------------------------------------------


@dg.multi_asset_check(
    name="chart_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "pngs_valid_at_documented_size",
            asset=name,
            blocking=True,
            description="Every PNG decodes and has its documented pixel size.",
        )
        for name in CHART_ASSETS
    ],
)
def chart_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    stored = _Stored(context, settings)
    for asset, check in sorted(_selected(context)):
        pngs = stored.object(asset)
        if isinstance(pngs, SkippedMethod):
            yield from _skipped({(asset, check)}, asset, pngs)
            continue
        yield check_result(check, asset, _png_problems(pngs), charts=len(pngs))


def _png_problems(pngs: dict[str, bytes]) -> list[str]:
    problems = []
    for name, png in pngs.items():
        kind = CHART_KIND[name.split("/", 1)[1]]
        try:
            size = charts.png_size(png)
        except ValueError as exc:
            problems.append(f"{name}: not a PNG ({exc})")
            continue
        if size != charts.CHART_SIZES[kind]:
            problems.append(f"{name}: {size[0]}x{size[1]} px, documented {charts.CHART_SIZES[kind]}")
    return problems


@dg.asset_check(
    asset="report",
    blocking=True,
    additional_deps=list(REPORT_INPUTS),
    description="The report shows every persona of the recommended method and every chart, no network reference.",
)
def shows_every_persona_and_chart(
    context: dg.AssetCheckExecutionContext, settings: PipelineSettings, report: dict
) -> dg.AssetCheckResult:
    stored = _Stored(context, settings)
    shown = reporting.report_references(stored.text(layout.REPORT))
    recommended = stored.object(f"{report['recommended']}_personas")
    expected_personas = [p["persona_name"] for p in recommended["personas"]]
    charts_by_asset = {asset: stored.object(asset) for asset in CHART_ASSETS}
    expected_charts = {name for pngs in charts_by_asset.values() if isinstance(pngs, dict) for name in pngs}
    problems = [f"persona {name!r} is missing" for name in expected_personas if name not in shown["personas"]]
    problems += [f"chart {name!r} is missing" for name in sorted(expected_charts - set(shown["charts"]))]
    problems += [f"external reference {ref!r}" for ref in shown["external_references"]]
    return check_result(
        "shows_every_persona_and_chart",
        "report",
        problems,
        personas=len(shown["personas"]),
        charts=len(shown["charts"]),
    )

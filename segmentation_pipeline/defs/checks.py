"""Asset checks: blocking ones stop everything downstream of a table that broke an invariant.

Checks read the stored tables, so they run with their asset and also on their own (checks-only job).
"""

import json
from pathlib import Path

import dagster as dg
import yaml

from segmentation_pipeline import charts, personas, profiles, validation
from segmentation_pipeline import report as reporting
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.defs.resources import PipelineSettings
from segmentation_pipeline.storage import TableStore


def _result(problems: list[str], **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems[:10]) if problems else "ok",
        metadata={"problems": dg.MetadataValue.json(problems[:50]), **metadata},
    )


def _store(settings: PipelineSettings) -> TableStore:
    return TableStore(settings.output_dir())


@dg.asset_check(asset="raw_transactions", blocking=True, description="Required mapped columns exist and parse.")
def required_columns_parseable(settings: PipelineSettings) -> dg.AssetCheckResult:
    store = _store(settings)
    raw = store.read("raw_transactions", store.partitions("raw_transactions"))
    return _result(validation.raw_table_problems(raw), rows=len(raw))


@dg.asset_check(
    asset="cleaned_transactions",
    blocking=True,
    additional_deps=["raw_transactions", "rejected_transactions"],
    description="Every month: raw rows = cleaned rows + rejected rows (nothing silently dropped).",
)
def raw_rows_accounted_for(settings: PipelineSettings) -> dg.AssetCheckResult:
    store = _store(settings)
    counts = {name: store.rows_per_partition(name) for name in ("raw_transactions", "cleaned_transactions", "rejected_transactions")}
    problems = validation.accounting_problems(*counts.values())
    totals = {name: sum(c.values()) for name, c in counts.items()}
    return _result(problems, **{f"{name}_rows": total for name, total in totals.items()})


@dg.asset_check(
    asset="cleaned_transactions",
    blocking=True,
    description="No missing customer, quantity non-zero (negative only on returns), unit price positive.",
)
def cleaned_rows_valid(settings: PipelineSettings) -> dg.AssetCheckResult:
    store = _store(settings)
    cleaned = store.read("cleaned_transactions", store.partitions("cleaned_transactions"))
    return _result(validation.cleaned_table_problems(cleaned), rows=len(cleaned))


@dg.asset_check(
    asset="rejected_transactions",
    blocking=False,
    additional_deps=["raw_transactions"],
    description="Warns when more than half of the raw rows were rejected: the column mapping may be wrong.",
)
def rejected_share_below_half(settings: PipelineSettings) -> dg.AssetCheckResult:
    store = _store(settings)
    raw = sum(store.rows_per_partition("raw_transactions").values())
    rejected = sum(store.rows_per_partition("rejected_transactions").values())
    share = validation.rejected_share(raw, rejected)
    problems = [f"{share:.1%} of {raw} raw rows were rejected"] if share > 0.5 else []
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description=problems[0] if problems else f"{share:.1%} of raw rows rejected",
        metadata={"rejected_share": share},
    )


def _feature_table_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name="one_row_per_customer_no_nulls",
        blocking=True,
        description="One row per customer, no missing values in numeric columns, recency >= 0.",
    )
    def _check(settings: PipelineSettings) -> dg.AssetCheckResult:
        frame = _store(settings).read(table)
        return _result(validation.feature_table_problems(frame), rows=len(frame))

    return _check


feature_table_checks = [_feature_table_check(t) for t in ("rfm", "customer_features_basic", "customer_features_enriched")]


STABILITY_WARNING_BELOW = 0.75


def _model_checks(method: str) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec("every_customer_assigned", asset=method, blocking=True, additional_deps=["customer_features_basic"]),
        dg.AssetCheckSpec("k_within_bounds", asset=method, blocking=True),
        dg.AssetCheckSpec("no_empty_cluster", asset=method, blocking=True),
        dg.AssetCheckSpec(
            "stability_at_least_0_75",
            asset=method,
            blocking=False,
            description=f"Warns when the mean bootstrap ARI is below {STABILITY_WARNING_BELOW}.",
        ),
    ]

    @dg.multi_asset_check(name=f"{method}_checks", specs=specs, can_subset=True, ins={"result": dg.AssetIn(method)})
    def _checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings, result):
        clustering = settings.load().clustering_settings().for_method(method)
        features = _store(settings).read("customer_features_basic", columns=["customer_id"])
        outcomes = {
            "every_customer_assigned": validation.unassigned_customers(
                result.labels, result.customer_ids, features["customer_id"]
            ),
            "k_within_bounds": validation.cluster_count_problems(
                result.n_clusters, clustering.k_min, clustering.k_max, METHODS[method].chooses_k
            ),
            "no_empty_cluster": validation.empty_cluster_problems(result.labels, result.n_clusters),
        }
        for name in context.selected_asset_check_keys:
            if name.name in outcomes:
                yield dg.AssetCheckResult(check_name=name.name, asset_key=method, **_fields(outcomes[name.name]))
        if any(key.name == "stability_at_least_0_75" for key in context.selected_asset_check_keys):
            stability = float(result.metrics.get("stability_ari_mean", float("nan")))
            yield dg.AssetCheckResult(
                check_name="stability_at_least_0_75",
                asset_key=method,
                passed=bool(stability >= STABILITY_WARNING_BELOW),
                severity=dg.AssetCheckSeverity.WARN,
                description=f"mean bootstrap ARI {stability:.3f}",
                metadata={"stability_ari_mean": stability},
            )

    return _checks


def _fields(problems: list[str]) -> dict:
    return {
        "passed": not problems,
        "description": "; ".join(problems[:10]) if problems else "ok",
        "metadata": {"problems": dg.MetadataValue.json(problems[:50])},
    }


model_checks = [_model_checks(method) for method in METHODS]


def _profile_check(method: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=f"{method}_profile",
        name="profile_adds_up_and_files_valid",
        blocking=True,
        description="Sizes sum to n_samples, percentages to 100 (±0.1); the JSON and YAML files parse and are equal.",
    )
    def _check(settings: PipelineSettings) -> dg.AssetCheckResult:
        folder = settings.output_dir() / "profiles"
        json_path = folder / f"{method}_cluster_profile.json"
        yaml_path = folder / f"{method}_cluster_profile.yaml"
        try:
            from_json = json.loads(json_path.read_text(encoding="utf-8"))
            from_yaml = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return _result([f"profile files unreadable: {exc}"])
        problems = profiles.validate_profile(from_json)
        if from_yaml != from_json:
            problems.append("the YAML profile does not load back equal to the JSON profile")
        return _result(problems)

    return _check


profile_checks = [_profile_check(method) for method in METHODS]


def _personas_check(method: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=f"{method}_personas",
        name="one_valid_persona_per_cluster",
        blocking=True,
        additional_ins={"result": dg.AssetIn(method)},
        description="Persona count equals cluster count; names unique; value tiers match their thresholds.",
    )
    def _check(result, **personas_value) -> dg.AssetCheckResult:
        (built,) = personas_value.values()
        return _result(personas.validate_personas(built, result.n_clusters))

    return _check


persona_checks = [_personas_check(method) for method in METHODS]

CHART_ASSETS = [*(f"{m}_charts" for m in METHODS), "pipeline_charts"]


@dg.multi_asset_check(
    name="chart_checks",
    specs=[
        dg.AssetCheckSpec("pngs_valid_at_documented_size", asset=name, blocking=True) for name in CHART_ASSETS
    ],
    can_subset=True,
    ins={name: dg.AssetIn(name) for name in CHART_ASSETS},
)
def chart_checks(context: dg.AssetCheckExecutionContext, **chart_sets: dict):
    selected = {key.asset_key.to_user_string() for key in context.selected_asset_check_keys}
    for asset, pngs in chart_sets.items():
        if asset in selected:
            yield dg.AssetCheckResult(
                check_name="pngs_valid_at_documented_size", asset_key=asset, **_fields(_png_problems(pngs))
            )


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


CHART_KIND = {
    "scatter": "cluster_scatter",
    "dashboard": "cluster_dashboard",
    "membership_histogram": "membership_histogram",
    "rfm_distributions": "rfm_distributions",
    "segment_sizes": "segment_sizes",
    "selection_curves": "selection_curves",
    "method_comparison": "method_comparison",
}


REPORT_INPUTS = [*CHART_ASSETS, *(f"{m}_personas" for m in METHODS)]


@dg.multi_asset_check(
    name="report_check",
    specs=[
        dg.AssetCheckSpec(
            "shows_every_persona_and_chart",
            asset="report",
            blocking=True,
            description="The report shows every persona of the recommended method and every chart, no network reference.",
            additional_deps=REPORT_INPUTS,
        )
    ],
    ins={name: dg.AssetIn(name) for name in ["report", *REPORT_INPUTS]},
)
def report_complete(report: dict, **inputs: dict) -> dg.AssetCheckResult:
    html = Path(report["path"]).read_text(encoding="utf-8")
    shown = reporting.report_references(html)
    expected_personas = [p["persona_name"] for p in inputs[f"{report['recommended']}_personas"]["personas"]]
    expected_charts = {name for asset in CHART_ASSETS for name in inputs[asset]}
    problems = [f"persona {name!r} is missing" for name in expected_personas if name not in shown["personas"]]
    problems += [f"chart {name!r} is missing" for name in sorted(expected_charts - set(shown["charts"]))]
    problems += [f"external reference {ref!r}" for ref in shown["external_references"]]
    return _result(problems, personas=len(shown["personas"]), charts=len(shown["charts"]))

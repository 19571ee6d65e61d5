"""Model stage: one asset per clustering method, side by side, plus the comparison across methods."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import comparison, layout
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.clustering.assignments import assignments_table
from segmentation_pipeline.clustering.base import UnsupportedDataError
from segmentation_pipeline.clustering.runner import clustered_columns
from segmentation_pipeline.clustering.support import SkippedMethod, skip_reason
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.metadata import numeric_metadata
from segmentation_pipeline.orchestration.resources import (
    PipelineSettings,
    record_outputs,
    record_skipped,
)
from segmentation_pipeline.storage import atomic_write_text, parquet_rows, write_parquet

METHOD_DESCRIPTIONS = {
    "kmeans": "k-means (scikit-learn KMeans); k by silhouette on a fixed sample.",
    "gmm": "Gaussian mixture (scikit-learn GaussianMixture) with soft probabilities; k by BIC (lowest, or the elbow).",
    "fuzzy_cmeans": "Fuzzy c-means (scikit-fuzzy) with soft memberships; k by silhouette on a fixed sample.",
    "autoencoder_kmeans": "k-means on the bottleneck of an MLP autoencoder (scikit-learn MLPRegressor); k by silhouette.",
    "hdbscan": "Density clusters (scikit-learn HDBSCAN), no k needed; noise reported, then assigned to the nearest cluster.",
}
SHARED_DESCRIPTION = (
    " Fitted on `customer_features_basic` (configured features, log1p on skewed counts and money, standard "
    "scaling); quality metrics and bootstrap stability in the metadata; the model bundle (`predict` on new "
    "customers) and the per-customer assignments are written under the output folder."
)


def _model_asset(method: str) -> dg.AssetsDefinition:
    @dg.asset(
        automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        name=method,
        group_name="models",
        io_manager_key="object_io_manager",
        kinds={"scikitlearn"},
        owners=OWNERS,
        deps=["customer_features_basic"],
        description=METHOD_DESCRIPTIONS[method] + SHARED_DESCRIPTION,
    )
    def _fit(context: dg.AssetExecutionContext, settings: PipelineSettings):  # MethodRuns, or SkippedMethod
        config = settings.config
        clustering = config.clustering_settings()
        enabled = config.clustering.enabled_methods()
        customers = parquet_rows(settings.locate(layout.table("customer_features_basic"), context.run.run_id))
        reason = skip_reason(method, enabled, customers, clustering)
        if reason:
            return record_skipped(context, settings, SkippedMethod(method, reason))
        # Only the columns the method clusters on: at millions of customers the table is gigabytes.
        customer_features_basic = settings.read_table(
            "customer_features_basic",
            context.run.run_id,
            lambda available: clustered_columns(available, clustering.for_method(method)),
        )
        try:
            fitted = comparison.method_runs(method, customer_features_basic, clustering)
        except UnsupportedDataError as exc:
            return record_skipped(context, settings, SkippedMethod(method, str(exc)))
        result = fitted.result
        staging = settings.staging(context.run.run_id)
        files = [layout.model_bundle(method), layout.cluster_assignments(method)]
        result.bundle.save(staging.path(files[0]))
        assignments = assignments_table(result)
        write_parquet(assignments, staging.path(files[1]))
        record_outputs(
            context,
            settings,
            files,
            assignments,
            n_clusters=result.n_clusters,
            feature_set=fitted.preferred,
            feature_sets_not_run=dg.MetadataValue.json(fitted.unavailable),
            parameters=dg.MetadataValue.json(result.params),
            selection_curve=dg.MetadataValue.json(result.selection_curve),
            fit_warnings=dg.MetadataValue.json(result.warnings),
            **numeric_metadata(result.metrics),
            **{
                key: value
                for feature_set, run in fitted.runs.items()
                for key, value in numeric_metadata(run.metrics, prefix=f"metric/{feature_set}/").items()
            },
        )
        return fitted

    return _fit


model_assets = [_model_asset(method) for method in METHODS]


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    group_name="models",
    io_manager_key="object_io_manager",
    kinds={"pandas", "json"},
    owners=OWNERS,
    ins={method: dg.AssetIn(method) for method in METHODS},
    description=(
        "Every method side by side: k, quality metrics, stability, fit seconds; pairwise ARI between methods; "
        "ARI/NMI against the true persona when ground truth exists; the recommended method and why "
        f"({comparison.RECOMMENDATION_RULE})."
    ),
)
def method_comparison(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    ground_truth_customers: pd.DataFrame,
    **results,  # MethodRuns or SkippedMethod per method
) -> dict:
    fitted = [run for result in results.values() if not isinstance(result, SkippedMethod) for run in result.runs.values()]
    skipped = {result.method: result.reason for result in results.values() if isinstance(result, SkippedMethod)}
    if not fitted:
        reasons = "; ".join(f"{method}: {reason}" for method, reason in skipped.items())
        raise InputDataError(f"customer features: no clustering method could run ({reasons})")
    truth = None
    if len(ground_truth_customers):
        truth = ground_truth_customers.set_index("customer_id")["persona"]
    compared = comparison.compare_methods(fitted, truth=truth)
    summary = comparison.comparison_to_dict(compared, skipped)
    staging = settings.staging(context.run.run_id)
    files = [layout.table("method_comparison"), layout.METHOD_COMPARISON_JSON]
    write_parquet(compared.table, staging.path(files[0]))
    atomic_write_text(staging.path(files[1]), json.dumps(summary, indent=2))
    record_outputs(
        context,
        settings,
        files,
        compared.table,
        unit="runs",
        recommended=compared.recommended,
        recommendation_reason=compared.recommendation_reason,
        skipped_methods=dg.MetadataValue.json(skipped),
        comparison=dg.MetadataValue.md(compared.table.round(4).to_markdown(index=False)),
        pairwise_ari=dg.MetadataValue.md(compared.pairwise_ari.round(3).to_markdown()),
    )
    return summary

"""Model stage: one asset per clustering method, side by side, plus the comparison across methods."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import comparison, layout
from segmentation_pipeline.clustering import METHODS, ClusteringResult, run_method
from segmentation_pipeline.clustering.assignments import assignments_table
from segmentation_pipeline.orchestration.conventions import OWNERS, REFRESH_WHEN_UPSTREAM_CHANGES
from segmentation_pipeline.orchestration.metadata import numeric_metadata
from segmentation_pipeline.orchestration.resources import PipelineSettings, record_outputs
from segmentation_pipeline.storage import atomic_write_text, write_parquet

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
        description=METHOD_DESCRIPTIONS[method] + SHARED_DESCRIPTION,
    )
    def _fit(
        context: dg.AssetExecutionContext, settings: PipelineSettings, customer_features_basic: pd.DataFrame
    ) -> ClusteringResult:
        result = run_method(method, customer_features_basic, settings.config.clustering_settings())
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
            parameters=dg.MetadataValue.json(result.params),
            selection_curve=dg.MetadataValue.json(result.selection_curve),
            **numeric_metadata(result.metrics),
        )
        return result

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
    **results: ClusteringResult,
) -> dict:
    truth = None
    if len(ground_truth_customers):
        truth = ground_truth_customers.set_index("customer_id")["persona"]
    compared = comparison.compare_methods(list(results.values()), truth=truth)
    summary = comparison.comparison_to_dict(compared)
    staging = settings.staging(context.run.run_id)
    files = [layout.table("method_comparison"), layout.METHOD_COMPARISON_JSON]
    write_parquet(compared.table, staging.path(files[0]))
    atomic_write_text(staging.path(files[1]), json.dumps(summary, indent=2))
    record_outputs(
        context,
        settings,
        files,
        compared.table,
        recommended=compared.recommended,
        recommendation_reason=compared.recommendation_reason,
        comparison=dg.MetadataValue.md(compared.table.round(4).to_markdown(index=False)),
        pairwise_ari=dg.MetadataValue.md(compared.pairwise_ari.round(3).to_markdown()),
    )
    return summary

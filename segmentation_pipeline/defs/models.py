"""Model stage: one asset per clustering method, side by side, plus the comparison across methods."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import comparison
from segmentation_pipeline.clustering import METHODS, ClusteringResult, run_method
from segmentation_pipeline.clustering.assignments import assignments_table
from segmentation_pipeline.defs.ingest import OWNERS
from segmentation_pipeline.defs.resources import PipelineSettings, publish
from segmentation_pipeline.defs.sensors import REFRESH_WHEN_UPSTREAM_CHANGES
from segmentation_pipeline.storage import TableStore, atomic_write_text

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


def _numeric_metadata(metrics: dict) -> dict:
    """Numbers become individual metadata entries, so the UI plots them across runs."""
    return {
        f"metric/{name}": float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


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
        result = run_method(method, customer_features_basic, settings.load().clustering_settings())
        output_dir = settings.output_dir()
        bundle_path = result.bundle.save(output_dir / "models" / f"{method}_bundle.joblib")
        assignments = assignments_table(result)
        table_path = TableStore(output_dir).write(f"{method}_cluster_assignments", assignments)
        publish(
            context,
            settings,
            [bundle_path, table_path],
            assignments,
            n_clusters=result.n_clusters,
            parameters=dg.MetadataValue.json(result.params),
            selection_curve=dg.MetadataValue.json(result.selection_curve),
            **_numeric_metadata(result.metrics),
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
    output_dir = settings.output_dir()
    table_path = TableStore(output_dir).write("method_comparison", compared.table)
    json_path = atomic_write_text(output_dir / "profiles" / "method_comparison.json", json.dumps(summary, indent=2))
    publish(
        context,
        settings,
        [table_path, json_path],
        compared.table,
        recommended=compared.recommended,
        recommendation_reason=compared.recommendation_reason,
        comparison=dg.MetadataValue.md(compared.table.round(4).to_markdown(index=False)),
        pairwise_ari=dg.MetadataValue.md(compared.pairwise_ari.round(3).to_markdown()),
    )
    return summary

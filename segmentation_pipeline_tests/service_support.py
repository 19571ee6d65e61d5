"""Builds real published sets for the service tests and the service benchmark.

A set is what the pipeline publishes, built here by the pipeline's own publication machinery
(`segmentation_pipeline.publication`): model bundles fitted by the clustering core, personas, the method
comparison and the customer tables are staged under a run, recorded per asset, and published as a new
immutable set with its `manifest.json` (sha256 of every file), made current by the atomic `current`
swap, at the paths `segmentation_pipeline.layout` names. Clustering runs once per process and method;
each published set only rewrites files.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.clustering import ClusteringResult, ClusteringSettings, run_method
from segmentation_pipeline.comparison import compare_methods, comparison_to_dict
from segmentation_pipeline.config import CANONICAL_COLUMNS
from segmentation_pipeline.publication import OutputFolder, PublishedSet, RunStaging
from segmentation_pipeline.retail import cleaning, features, rfm, sources, synthetic
from segmentation_pipeline.retail.personas import build_personas
from segmentation_pipeline.service import published
from segmentation_pipeline.storage import write_parquet

FAST_CLUSTERING = ClusteringSettings(bootstraps=0, k_max=6, autoencoder_epochs=10)


@functools.cache
def customer_features(customers: int = 500, months: int = 6, seed: int = 7) -> pd.DataFrame:
    """The basic customer feature table of a synthetic log, computed like the pipeline does."""
    data = synthetic.generate(customers=customers, months=months, seed=seed)
    identity = {name: (name if name in data.transactions.columns else None) for name in CANONICAL_COLUMNS}
    raw = sources.map_columns(data.transactions, identity, None, source="synthetic data")
    cleaned = cleaning.clean_transactions(raw, as_of="2030-01-01").cleaned
    return features.basic_features(cleaned, rfm.compute_rfm(cleaned))


@functools.cache
def clustered(method: str, customers: int = 500) -> ClusteringResult:
    return run_method(method, customer_features(customers), FAST_CLUSTERING)


def publish_retail_set(
    output_dir: Path,
    run_id: str,
    methods: Sequence[str] = ("kmeans", "gmm"),
    recommended: str | None = None,
    customers: int = 500,
    leads: bool = False,
) -> PublishedSet:
    """Stage a retail run for `methods` (plus a lead model with `leads`) as the pipeline's assets do,
    and publish it as the new current set. Like a partial run, assets this run does not stage (e.g. a
    method left out) stay as the previous set had them."""
    table = customer_features(customers)
    results = [clustered(method, customers) for method in methods]
    folder = OutputFolder(output_dir)
    staging = folder.staging(run_id)
    for result in results:
        bundle, assignments = layout.model_bundle(result.method), layout.cluster_assignments(result.method)
        result.bundle.save(staging.path(bundle))
        write_parquet(pd.DataFrame({"customer_id": result.customer_ids, "cluster": result.labels}), staging.path(assignments))
        staging.record(result.method, [bundle, assignments], len(result.labels))
        personas = layout.personas_json(result.method)
        _write_json(staging.path(personas), build_personas(result, table))
        staging.record(f"{result.method}_personas", [personas], None)
    comparison = comparison_to_dict(compare_methods(results))
    if recommended is not None:
        comparison["recommended"] = recommended
    _write_json(staging.path(layout.METHOD_COMPARISON_JSON), comparison)
    staging.record("method_comparison", [layout.METHOD_COMPARISON_JSON], len(results))
    features_table = layout.table("customer_features_basic")
    write_parquet(table, staging.path(features_table))
    staging.record("customer_features_basic", [features_table], len(table))
    if leads:
        stage_lead_model(staging)
    return folder.publish([run_id])


def lead_features(leads: int = 300, seed: int = 3) -> pd.DataFrame:
    """A small hand-made B2B lead table: three kinds of lead with different engagement."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, leads)
    return pd.DataFrame({
        "lead_id": [f"L{i:04d}" for i in range(leads)],
        "employees": np.array([10.0, 200.0, 5000.0])[kind] * rng.uniform(0.5, 1.5, leads),
        "web_visits": np.array([2.0, 15.0, 40.0])[kind] + rng.poisson(2, leads),
        "engagement_score": np.array([-1.0, 0.5, 2.0])[kind] + rng.normal(0, 0.2, leads),
    })


@functools.cache
def lead_clustering() -> ClusteringResult:
    settings = ClusteringSettings(
        features=("employees", "web_visits", "engagement_score"), log1p_features=("employees",), k=3, bootstraps=0
    )
    return run_method("kmeans", lead_features().rename(columns={"lead_id": "customer_id"}), settings)


def stage_lead_model(staging: RunStaging) -> None:
    """A hand-made lead model (bundle, personas in the leads domain's shape, feature table) at the leads
    family's paths, staged and recorded under `staging`."""
    result = lead_clustering()
    family = published.LEADS
    bundle = published.bundle_path(family, "kmeans")
    result.bundle.save(staging.path(bundle))
    staging.record("leads_kmeans", [bundle], len(result.labels))
    sizes = np.bincount(result.labels)
    personas = {
        "method": "kmeans",
        "personas": [
            {"persona_name": f"Lead group {label}", "cluster_id": label, "rank": label + 1, "cluster_size": int(size),
             "cluster_percentage": round(100 * size / sizes.sum(), 2),
             "conversion_metrics": {"value_tier": ("HIGH", "MEDIUM", "LOW")[label]}}
            for label, size in enumerate(sizes)
        ],
    }
    _write_json(staging.path(published.personas_path(family, "kmeans")), personas)
    staging.record("leads_kmeans_personas", [published.personas_path(family, "kmeans")], None)
    write_parquet(lead_features(), staging.path(published.features_path(family)))
    staging.record("lead_features", [published.features_path(family)], len(lead_features()))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))

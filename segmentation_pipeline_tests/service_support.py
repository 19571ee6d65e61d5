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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.clustering import ClusteringResult, ClusteringSettings, run_method
from segmentation_pipeline.comparison import compare_methods, comparison_to_dict
from segmentation_pipeline.config import CANONICAL_COLUMNS
from segmentation_pipeline.leads.cleaning import clean_leads
from segmentation_pipeline.leads.conversion import conversion_by_cluster
from segmentation_pipeline.leads.personas import build_personas as build_lead_personas
from segmentation_pipeline.leads.segmentation import LeadSegmentation, segment_leads
from segmentation_pipeline.leads.settings import LeadsSettings
from segmentation_pipeline.leads.synthetic import generate_leads
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


# A small lead model as the leads domain builds it, with one extra categorical and one extra numeric
# feature (added to the synthetic leads) so the service's `extra` fields are exercised; a small
# min_cluster_size keeps every persona tiered... unless a cluster is tiny (then SMALL SAMPLE).
LEAD_SETTINGS = {
    "synthetic": {"leads": 1200, "seed": 5}, "bootstraps": 0, "min_cluster_size": 50,
    "categorical_features": ["plan"], "numeric_features": ["company_size"],
}


@dataclass(frozen=True)
class LeadModel:
    settings: LeadsSettings
    raw: pd.DataFrame  # the leads as the file holds them (with the extra columns)
    segmentation: LeadSegmentation
    personas: dict
    features: pd.DataFrame  # `lead_id` + the encoded columns (the published lead feature table)


@functools.cache
def lead_model() -> LeadModel:
    """Synthetic leads with two extra columns, cleaned, segmented and given personas by the leads core."""
    settings = LeadsSettings(**LEAD_SETTINGS)
    raw = generate_leads(settings.synthetic.leads, settings.synthetic.seed).leads
    rng = np.random.default_rng(5)
    raw["plan"] = rng.choice(["free", "team", "enterprise"], len(raw))
    raw["company_size"] = np.round(rng.lognormal(4, 1.5, len(raw)))
    cleaned = clean_leads(raw, settings).clean
    segmentation = segment_leads(cleaned, settings)
    is_sale = cleaned["is_sale"].to_numpy()
    conversion = conversion_by_cluster(segmentation.labels, is_sale, segmentation.result.n_clusters, settings)
    personas = build_lead_personas(cleaned, segmentation.labels, conversion, settings)
    features = pd.DataFrame(segmentation.encoded, columns=segmentation.encoder.columns)
    features.insert(0, "lead_id", cleaned["source_row"].to_numpy())
    return LeadModel(settings, raw, segmentation, personas, features)


def stage_lead_model(staging: RunStaging) -> None:
    """The lead model (bundle on canonical lead fields, personas, encoded feature table) at the leads
    family's paths, staged and recorded under `staging` as the leads assets do."""
    model = lead_model()
    family = published.LEADS
    bundle = published.bundle_path(family, published.LEAD_METHOD)
    model.segmentation.bundle.save(staging.path(bundle))
    write_parquet(model.features, staging.path(published.features_path(family)))
    staging.record("lead_segments", [bundle, published.features_path(family)], len(model.features))
    personas = published.personas_path(family, published.LEAD_METHOD)
    _write_json(staging.path(personas), model.personas)
    staging.record("lead_personas", [personas], model.personas["n_personas"])


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))

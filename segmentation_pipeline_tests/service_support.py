"""Builds real published sets for the service tests and the service benchmark.

A set is what the pipeline publishes (see `segmentation_pipeline.service.published`): model bundles
fitted by the clustering core, personas, the method comparison and the customer tables, listed with
their sha256 in `manifest.json`, under `<output_dir>/sets/<set_id>/`, made current by swapping the
`current` symlink. Clustering runs once per process and method; each published set only rewrites files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation_pipeline.retail import cleaning, features, rfm, sources, synthetic
from segmentation_pipeline.clustering import ClusteringResult, ClusteringSettings, run_method
from segmentation_pipeline.comparison import compare_methods, comparison_to_dict
from segmentation_pipeline.config import CANONICAL_COLUMNS
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
    cleaned = cleaning.clean_transactions(raw).cleaned
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
) -> Path:
    """Publish a retail set for `methods` (plus a lead model with `leads`) and make it current;
    returns the set folder."""
    output_dir = Path(output_dir)
    table = customer_features(customers)
    results = [clustered(method, customers) for method in methods]
    set_dir = output_dir / "sets" / run_id
    files: dict[str, str] = {}  # relative path -> asset key
    for result in results:
        bundle_path = published.bundle_path(published.RETAIL, result.method)
        result.bundle.save(set_dir / bundle_path)
        files[bundle_path] = result.method
        personas_path = published.personas_path(published.RETAIL, result.method)
        _write_json(set_dir / personas_path, build_personas(result, table))
        files[personas_path] = f"{result.method}_personas"
        assignments = f"tables/{result.method}_cluster_assignments.parquet"
        write_parquet(pd.DataFrame({"customer_id": result.customer_ids, "cluster": result.labels}), set_dir / assignments)
        files[assignments] = result.method
    comparison = comparison_to_dict(compare_methods(results))
    if recommended is not None:
        comparison["recommended"] = recommended
    comparison_path = published.comparison_path(published.RETAIL)
    _write_json(set_dir / comparison_path, comparison)
    files[comparison_path] = "method_comparison"
    features_path = published.features_path(published.RETAIL)
    write_parquet(table, set_dir / features_path)
    files[features_path] = "customer_features_basic"
    if leads:
        files.update(write_lead_model(set_dir))
    write_manifest(set_dir, run_id, files)
    make_current(output_dir, set_dir)
    return set_dir


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


def write_lead_model(set_dir: Path) -> dict[str, str]:
    """The lead model files (bundle, personas, comparison, table) in `set_dir`; relative path -> asset."""
    result = lead_clustering()
    family = published.LEADS
    result.bundle.save(set_dir / published.bundle_path(family, "kmeans"))
    sizes = np.bincount(result.labels)
    personas = {
        "method": "kmeans",
        "personas": [
            {"persona_name": f"Lead group {label}", "cluster_id": label, "rank": label + 1, "size": int(size),
             "percentage": round(100 * size / sizes.sum(), 2), "value_tier": ("HIGH", "MEDIUM", "LOW")[label]}
            for label, size in enumerate(sizes)
        ],
    }
    _write_json(set_dir / published.personas_path(family, "kmeans"), personas)
    _write_json(set_dir / published.comparison_path(family), {"recommended": "kmeans"})
    write_parquet(lead_features(), set_dir / published.features_path(family))
    return {
        published.bundle_path(family, "kmeans"): "leads_kmeans",
        published.personas_path(family, "kmeans"): "leads_kmeans_personas",
        published.comparison_path(family): "leads_method_comparison",
        published.features_path(family): "lead_features",
    }


def write_manifest(set_dir: Path, run_id: str, files: dict[str, str], extra_files: dict[str, dict] | None = None) -> None:
    """manifest.json listing `files` (relative path -> asset) with their sha256 and size."""
    entries = {
        path: {"asset": asset, "run_id": run_id, "sha256": sha256_of(set_dir / path), "bytes": (set_dir / path).stat().st_size}
        for path, asset in files.items()
    }
    entries.update(extra_files or {})
    assets: dict[str, dict] = {}
    for path, entry in entries.items():
        asset = assets.setdefault(entry["asset"], {"run_id": run_id, "row_count": None, "files": []})
        asset["files"].append(path)
    manifest = {
        "format": "segmentation_pipeline.manifest",
        "format_version": 1,
        "set_id": set_dir.name,
        "run_id": run_id,
        "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": entries,
        "assets": assets,
    }
    _write_json(set_dir / "manifest.json", manifest)


def make_current(output_dir: Path, set_dir: Path) -> None:
    """Point `<output_dir>/current` at `set_dir` in one atomic rename."""
    temporary = Path(output_dir) / f".current-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(Path(set_dir).relative_to(output_dir))
    os.replace(temporary, Path(output_dir) / "current")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))

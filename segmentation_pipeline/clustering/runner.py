"""Run one clustering method end to end: prepare, choose k, fit everyone, relabel, measure, bundle."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from segmentation_pipeline.clustering.autoencoder_kmeans import AutoencoderKMeansMethod
from segmentation_pipeline.clustering.base import (
    ASSIGN_CHUNK_ROWS,
    ClusteringMethod,
    ClusteringResult,
    ClusteringSettings,
    UnsupportedDataError,
)
from segmentation_pipeline.clustering.bundle import ModelBundle
from segmentation_pipeline.clustering.fuzzy_cmeans import FuzzyCMeansMethod
from segmentation_pipeline.clustering.gmm import GaussianMixtureMethod
from segmentation_pipeline.clustering.hdbscan import HDBSCANMethod
from segmentation_pipeline.clustering.kmeans import KMeansMethod
from segmentation_pipeline.clustering.metrics import SilhouetteScorer, quality_metrics
from segmentation_pipeline.clustering.preparation import (
    CUSTOMER_ID,
    FEATURE_SETS,
    MIX_FEATURE_SET,
    FeatureTransform,
    customer_ids,
    mix_columns,
    require_features,
)
from segmentation_pipeline.clustering.selection import sample_rows, select_k
from segmentation_pipeline.clustering.stability import bootstrap_stability
from segmentation_pipeline.errors import InputDataError

METHODS: dict[str, ClusteringMethod] = {
    method.name: method
    for method in (
        KMeansMethod(),
        GaussianMixtureMethod(),
        FuzzyCMeansMethod(),
        AutoencoderKMeansMethod(),
        HDBSCANMethod(),
    )
}


def unavailable_feature_sets(features: pd.DataFrame, settings: ClusteringSettings) -> dict[str, str]:
    """Configured feature sets this customer table cannot feed, each with the reason."""
    if MIX_FEATURE_SET in settings.feature_sets and not mix_columns(features, settings.mix_prefix):
        return {MIX_FEATURE_SET: f"the customer table has no '{settings.mix_prefix}*' spend columns"}
    return {}


def clustered_columns(available: Sequence[str], settings: ClusteringSettings) -> list[str]:
    """The columns of a customer table (`available`, in table order) that the configured feature
    sets read: the id, the features and, for the purchase mix, the `mix_prefix` spend columns. A
    feature the table lacks raises here, naming every available column, as preparing it would."""
    require_features(settings.features, available)
    mix = MIX_FEATURE_SET in settings.feature_sets
    return [
        name for name in map(str, available)
        if name == CUSTOMER_ID or name in settings.features or (mix and name.startswith(settings.mix_prefix))
    ]


def run_feature_sets(
    method: str, features: pd.DataFrame, settings: ClusteringSettings | None = None
) -> tuple[dict[str, ClusteringResult], dict[str, str]]:
    """(one result per configured feature set, in `settings.feature_sets` order after the method's
    overrides; the feature sets that did not run, each with the reason): a set the table cannot feed
    (`unavailable_feature_sets`) or one whose data the method cannot support (UnsupportedDataError)."""
    settings = (settings or ClusteringSettings()).for_method(method)
    not_run = unavailable_feature_sets(features, settings)
    runs = {}
    for name in settings.feature_sets:
        if name in not_run:
            continue
        try:
            runs[name] = run_method(method, features, settings, name)
        except UnsupportedDataError as exc:
            not_run[name] = str(exc)
    return runs, not_run


def run_method(
    method: str,
    features: pd.DataFrame,
    settings: ClusteringSettings | None = None,
    feature_set: str | None = None,
) -> ClusteringResult:
    """Cluster the customer feature table (one row per customer: customer_id + feature columns) on
    one feature set (default: the first of `settings.feature_sets`)."""
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r} (known: {', '.join(METHODS)})")
    implementation = METHODS[method]
    settings = (settings or ClusteringSettings()).for_method(method)
    feature_set = feature_set or settings.feature_sets[0]
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r} (known: {', '.join(FEATURE_SETS)})")
    mix = mix_columns(features, settings.mix_prefix) if feature_set == MIX_FEATURE_SET else []
    if feature_set == MIX_FEATURE_SET and not mix:
        raise InputDataError(
            f"customer features: feature set '{MIX_FEATURE_SET}' needs '{settings.mix_prefix}*' spend columns"
        )
    started = time.perf_counter()
    # Single-threaded BLAS and OpenMP: on n x 6 matrices threads only add synchronisation (GMM
    # fits ran several times slower on two threads), one thread keeps results bit-stable, and the
    # orchestrator can run methods side by side instead. Warnings (a k-means restart that found fewer
    # distinct clusters repeats on every bootstrap) are counted into the result, not printed; the
    # warnings module's state is process-wide, so methods run side by side in threads would share it.
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = customer_ids(features)
        # The preparation (scaling, purchase-mix PCA) is fitted on the fit sample like the model,
        # then applies to everyone in chunks: its cost and memory stay flat as customers grow.
        fitted_rows = sample_rows(len(features), settings.fit_sample_size, settings.seed)
        everyone = len(fitted_rows) == len(features)
        transform, X = FeatureTransform.fit(
            features if everyone else features.iloc[fitted_rows],
            settings.features,
            settings.log1p_features,
            mix,
            settings.mix_components,
            settings.mix_weight,
            settings.standardize,
        )
        if not everyone:
            X = transform.transform(features, chunk_rows=ASSIGN_CHUNK_ROWS)
        sampled = sample_rows(len(X), settings.silhouette_sample_size, settings.seed)
        silhouette = SilhouetteScorer(X[sampled])
        selection = select_k(implementation, X, settings, silhouette)
        model = implementation.fit(X if len(fitted_rows) == len(X) else X[fitted_rows], selection.k, settings, settings.seed)
        raw = model.assign_in_chunks(X)
        params = {
            "k": model.n_clusters,
            "k_source": selection.source,
            "k_min": settings.k_min,
            "k_max": settings.k_max,
            "seed": settings.seed,
            "feature_set": feature_set,
            "selection_sample_size": min(len(X), settings.selection_sample_size),
            "fit_sample_size": len(fitted_rows),
            "silhouette_sample_size": len(sampled),
            "bootstraps": settings.bootstraps,
            "bootstrap_sample_size": min(len(X), settings.bootstrap_sample_size),
            "preparation": transform.describe(),
            **implementation.parameters(model, settings),
        }
        bundle = ModelBundle(
            method=method,
            transform=transform,
            model=model,
            label_map=size_order_map(raw.labels, X, model.n_clusters),
            n_clusters=model.n_clusters,
            params=params,
        )
        assignment = bundle.publish(raw)
        labels = assignment.labels
        metrics = {
            **quality_metrics(X[fitted_rows], labels[fitted_rows], silhouette.score(labels[sampled])),
            **bootstrap_stability(implementation, X, selection.k, labels, settings),
        }
        diagnostics = implementation.diagnostics(
            model, X, assignment, np.argsort(bundle.label_map), transform.columns
        )
    metrics.update(diagnostics.metrics)
    metrics["fit_seconds"] = round(time.perf_counter() - started, 3)
    return ClusteringResult(
        method=method,
        customer_ids=ids,
        labels=labels,
        memberships=assignment.memberships,
        n_clusters=model.n_clusters,
        features_used=list(transform.features),
        params=params,
        metrics=metrics,
        selection_curve=selection.curve,
        cluster_extras=diagnostics.cluster_extras,
        root_extras=diagnostics.root_extras,
        prepared=X,
        bundle=bundle,
        warnings=warning_counts(caught),
        feature_set=feature_set,
        noise=assignment.noise,
    )


def warning_counts(caught: list[warnings.WarningMessage]) -> dict[str, int]:
    """'ConvergenceWarning: <first line of the message>' -> occurrences, most frequent first."""
    counts = Counter(f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}" for w in caught)
    return dict(counts.most_common())


def size_order_map(labels: np.ndarray, X: np.ndarray, n_clusters: int) -> np.ndarray:
    """Model cluster id -> published label: by descending size, ties by centroid (lexicographic in
    the prepared space), so label ids do not depend on the algorithm's arbitrary numbering."""
    clustered = labels >= 0
    sizes = np.bincount(labels[clustered], minlength=n_clusters)
    sums = np.stack(
        [np.bincount(labels[clustered], weights=column, minlength=n_clusters) for column in X[clustered].T], axis=1
    )
    centroids = sums / np.maximum(sizes, 1)[:, None]
    order = np.lexsort([*centroids.T[::-1], -sizes])
    label_map = np.empty(n_clusters, dtype=np.int64)
    label_map[order] = np.arange(n_clusters)
    return label_map

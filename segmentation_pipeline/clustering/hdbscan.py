"""HDBSCAN (scikit-learn): density clusters, the number of clusters found by the algorithm.

HDBSCAN is quadratic-ish in memory and time and cannot label new points, so it is fitted on a sample
(hdbscan_sample_size) and every customer - fitted or not, at training or prediction time - takes the
label of the nearest fitted customer (exact nearest neighbour: by a KD-tree in up to
KD_TREE_MAX_DIMENSIONS prepared dimensions, by distance matrix products beyond, where the tree
degenerates to brute force; on the 10M benchmark's customers the tree was 5x faster in the 6
behaviour dimensions and no faster in the 14 behaviour_mix ones).
With assign_noise="nearest" the fitted noise customers first take the label of their nearest
clustered neighbour, so everyone gets a segment; with "keep" they stay -1. A customer counts as noise when its nearest fitted customer is noise
(exactly HDBSCAN's noise for the fitted ones). Confidence is HDBSCAN's membership strength of that
nearest fitted customer (0 for noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.metrics import pairwise_distances_argmin
from sklearn.neighbors import NearestNeighbors

from segmentation_pipeline.clustering.base import (
    Assignment,
    ClusteringMethod,
    ClusteringSettings,
    ClusterModel,
    Diagnostics,
    UnsupportedDataError,
)
from segmentation_pipeline.clustering.selection import sample_rows

KD_TREE_MAX_DIMENSIONS = 8  # nearest fitted customer by KD-tree up to here, by matrix products beyond
AUTO_MIN_CLUSTER_SHARE = 0.01  # min_cluster_size=None: 1 % of the fitted customers ...
AUTO_MIN_CLUSTER_FLOOR = 10  # ... but at least this many


def effective_min_cluster_size(settings: ClusteringSettings, n_fitted: int) -> int:
    """min_cluster_size, or for None 1 % of the fitted customers (at least AUTO_MIN_CLUSTER_FLOOR)."""
    return settings.min_cluster_size or max(AUTO_MIN_CLUSTER_FLOOR, round(AUTO_MIN_CLUSTER_SHARE * n_fitted))


class HDBSCANModel(ClusterModel):
    """Nearest-fitted-customer assignment over HDBSCAN's labels of its fitted sample."""

    def __init__(
        self, fitted: np.ndarray, labels: np.ndarray, strengths: np.ndarray, assign_noise: str, **hdbscan_params
    ):
        clustered = labels >= 0
        if not clustered.any():
            raise UnsupportedDataError(
                f"hdbscan found no cluster among {len(labels)} customers with {hdbscan_params}; "
                "lower min_cluster_size / min_samples"
            )
        resolved = labels.copy()
        if assign_noise == "nearest" and not clustered.all():
            nearest = pairwise_distances_argmin(fitted[~clustered], fitted[clustered])
            resolved[~clustered] = labels[clustered][nearest]
        self.fitted = fitted
        self.nearest = NearestNeighbors(
            n_neighbors=1,
            algorithm="kd_tree" if fitted.shape[1] <= KD_TREE_MAX_DIMENSIONS else "brute",
            n_jobs=-1,
        ).fit(fitted)
        self.labels = resolved
        self.noise = ~clustered
        self.strengths = strengths
        self.assign_noise = assign_noise
        self.hdbscan_params = hdbscan_params
        self.n_clusters = int(labels.max()) + 1

    def assign(self, X: np.ndarray) -> Assignment:
        nearest = self.nearest.kneighbors(X, return_distance=False)[:, 0]
        return Assignment(self.labels[nearest], None, self.strengths[nearest], self.noise[nearest])


class HDBSCANMethod(ClusteringMethod):
    name = "hdbscan"
    chooses_k = False

    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> HDBSCANModel:
        fitted = X[sample_rows(len(X), settings.hdbscan_sample_size, seed)]
        min_cluster_size = effective_min_cluster_size(settings, len(fitted))
        min_samples = min(settings.min_samples or min_cluster_size, len(fitted))
        clusterer = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit(fitted)
        return HDBSCANModel(
            fitted,
            clusterer.labels_,
            clusterer.probabilities_,
            settings.assign_noise,
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
        )

    def parameters(self, model: HDBSCANModel, settings: ClusteringSettings) -> dict:
        return {
            **model.hdbscan_params,
            "fitted_sample_size": len(model.labels),
            "assign_noise": settings.assign_noise,
        }

    def diagnostics(
        self,
        model: HDBSCANModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        noise = assignment.noise
        extras = {}
        if model.assign_noise == "nearest":  # say how much of each cluster is reassigned noise
            counts = np.bincount(assignment.labels[noise], minlength=model.n_clusters)
            extras = {label: {"reassigned_noise_count": int(count)} for label, count in enumerate(counts)}
        return Diagnostics(
            metrics={
                "noise_count": int(noise.sum()),
                "noise_share": float(noise.mean()),
                "noise_share_fitted": float(model.noise.mean()),
            },
            cluster_extras=extras,
        )

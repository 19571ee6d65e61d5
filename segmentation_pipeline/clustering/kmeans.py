"""k-means (scikit-learn KMeans): hard assignment to the nearest centre.

Confidence is the distance margin 1 - d_nearest / d_second_nearest (0 on a boundary between two
centres, 1 on a centre).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from segmentation_pipeline.clustering.base import (
    Assignment,
    ClusteringMethod,
    ClusteringSettings,
    ClusterModel,
    Diagnostics,
    distance_margin,
)


def fit_kmeans(X: np.ndarray, k: int, n_init: int, seed: int) -> KMeans:
    """The k-means fit shared by kmeans, autoencoder_kmeans and the fuzzy c-means start."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)


class KMeansModel(ClusterModel):
    def __init__(self, kmeans: KMeans):
        self.kmeans = kmeans
        self.n_clusters = int(kmeans.n_clusters)

    def assign(self, X: np.ndarray) -> Assignment:
        distances = self.kmeans.transform(X)
        return Assignment(distances.argmin(axis=1), None, distance_margin(distances))


class KMeansMethod(ClusteringMethod):
    name = "kmeans"

    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> KMeansModel:
        return KMeansModel(fit_kmeans(X, k, settings.kmeans_n_init, seed))

    def parameters(self, model: KMeansModel, settings: ClusteringSettings) -> dict:
        return {"n_init": settings.kmeans_n_init}

    def diagnostics(
        self,
        model: KMeansModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        return Diagnostics(metrics={"inertia": float(model.kmeans.inertia_)})

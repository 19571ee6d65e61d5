"""Autoencoder + k-means: k-means on the bottleneck of a small network trained to reconstruct the
prepared features (scikit-learn MLPRegressor with the input as its own target).

The network is input -> hidden -> bottleneck -> hidden -> input with tanh units; the bottleneck
activations are computed from the fitted `coefs_` / `intercepts_`. It is trained on a sample
(autoencoder_sample_size) with early stopping, which is plenty for six features and keeps the fit
fast; everyone is then encoded and clustered. Confidence is the k-means distance margin in the
encoded space.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from segmentation_pipeline.clustering.base import (
    Assignment,
    ClusteringMethod,
    ClusteringSettings,
    ClusterModel,
    Diagnostics,
    distance_margin,
)
from segmentation_pipeline.clustering.kmeans import fit_kmeans
from segmentation_pipeline.clustering.metrics import grouped, summary_stats
from segmentation_pipeline.clustering.selection import sample_rows

ENCODER_LAYERS = 2  # input -> hidden -> bottleneck
LEARNING_RATE = 0.01
BATCH_SIZE = 256
PATIENCE = 5  # epochs without validation improvement before early stopping


class AutoencoderKMeansModel(ClusterModel):
    def __init__(self, network: MLPRegressor, kmeans: KMeans):
        self.network = network
        self.kmeans = kmeans
        self.n_clusters = int(kmeans.n_clusters)

    def assign(self, X: np.ndarray) -> Assignment:
        distances = self.kmeans.transform(encode(self.network, X))
        return Assignment(distances.argmin(axis=1), None, distance_margin(distances))


def encode(network: MLPRegressor, X: np.ndarray) -> np.ndarray:
    """Bottleneck activations of the network for X."""
    for weights, bias in zip(network.coefs_[:ENCODER_LAYERS], network.intercepts_[:ENCODER_LAYERS]):
        X = np.tanh(X @ weights + bias)
    return X


def train_autoencoder(X: np.ndarray, settings: ClusteringSettings, seed: int) -> MLPRegressor:
    rows = X[sample_rows(len(X), settings.autoencoder_sample_size, seed)]
    network = MLPRegressor(
        hidden_layer_sizes=(settings.autoencoder_hidden, settings.autoencoder_bottleneck, settings.autoencoder_hidden),
        activation="tanh",
        learning_rate_init=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_iter=settings.autoencoder_epochs,
        early_stopping=True,
        n_iter_no_change=PATIENCE,
        random_state=seed,
    )
    with warnings.catch_warnings():  # stopping at the epoch cap is intended, not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        return network.fit(rows, rows)


class AutoencoderKMeansMethod(ClusteringMethod):
    name = "autoencoder_kmeans"

    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> AutoencoderKMeansModel:
        network = train_autoencoder(X, settings, seed)
        return self._cluster(network, X, k, settings, seed)

    def candidates(
        self, X: np.ndarray, ks: Sequence[int], settings: ClusteringSettings
    ) -> Iterator[AutoencoderKMeansModel]:
        """One network for all candidate k: only the k-means step depends on k."""
        network = train_autoencoder(X, settings, settings.seed)
        for k in ks:
            yield self._cluster(network, X, k, settings, settings.seed)

    @staticmethod
    def _cluster(
        network: MLPRegressor, X: np.ndarray, k: int, settings: ClusteringSettings, seed: int
    ) -> AutoencoderKMeansModel:
        kmeans = fit_kmeans(encode(network, X), k, settings.kmeans_n_init, seed)
        return AutoencoderKMeansModel(network, kmeans)

    def parameters(self, model: AutoencoderKMeansModel, settings: ClusteringSettings) -> dict:
        return {
            "hidden_layer_sizes": list(model.network.hidden_layer_sizes),
            "activation": "tanh",
            "training_sample_cap": settings.autoencoder_sample_size,
            "epochs": int(model.network.n_iter_),
            "n_init": settings.kmeans_n_init,
        }

    def diagnostics(
        self,
        model: AutoencoderKMeansModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        encoded = encode(model.network, X)
        centers = model.kmeans.cluster_centers_[order]
        distances = np.linalg.norm(encoded - centers[assignment.labels], axis=1)
        extras = {}
        for label, members in enumerate(grouped(distances, assignment.labels, range(model.n_clusters))):
            stats = summary_stats(members, stats=("mean", "std"))
            extras[label] = {
                "encoded_space_stats": {
                    "mean_distance_to_center": stats["mean"],
                    "std_distance_to_center": stats["std"],
                }
            }
        reconstruction_error = float(np.mean((model.network.predict(X) - X) ** 2))
        return Diagnostics(metrics={"reconstruction_error": reconstruction_error}, cluster_extras=extras)

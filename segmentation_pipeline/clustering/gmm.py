"""Gaussian mixture (scikit-learn GaussianMixture): soft assignment by posterior probability.

k is chosen by BIC on the selection sample: the lowest BIC, unless BIC still falls at k_max (common
on real customer data, where extra components keep buying likelihood); then the elbow of the curve
(`selection.elbow_index`). Confidence is the highest posterior probability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.mixture import GaussianMixture

from segmentation_pipeline.clustering.base import (
    Assignment,
    ClusteringMethod,
    ClusteringSettings,
    ClusterModel,
    Diagnostics,
)
from segmentation_pipeline.clustering.metrics import (
    SilhouetteScorer,
    membership_entropy,
    per_cluster,
)
from segmentation_pipeline.clustering.selection import elbow_index

HIGH_CONFIDENCE = 0.9  # a customer is confidently placed when its top probability is >= this
LOW_CONFIDENCE = 0.6  # ... and ambiguous when it is below this


class GaussianMixtureModel(ClusterModel):
    def __init__(self, mixture: GaussianMixture):
        self.mixture = mixture
        self.n_clusters = int(mixture.n_components)

    def assign(self, X: np.ndarray) -> Assignment:
        probabilities = self.mixture.predict_proba(X)
        return Assignment(probabilities.argmax(axis=1), probabilities, probabilities.max(axis=1))


class GaussianMixtureMethod(ClusteringMethod):
    name = "gmm"
    criterion = "bic"

    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> GaussianMixtureModel:
        mixture = GaussianMixture(
            n_components=k,
            covariance_type=settings.gmm_covariance_type,
            reg_covar=settings.gmm_reg_covar,
            n_init=settings.gmm_n_init,
            random_state=seed,
        )
        return GaussianMixtureModel(mixture.fit(X))

    def selection_score(
        self, model: GaussianMixtureModel, X: np.ndarray, silhouette: SilhouetteScorer
    ) -> float:
        return float(model.mixture.bic(X))

    def choose(self, ks: Sequence[int], scores: Sequence[float]) -> tuple[int, str]:
        lowest = int(np.argmin(scores))
        if lowest == len(ks) - 1 and len(ks) >= 3:
            return int(ks[elbow_index(scores)]), "elbow"
        return int(ks[lowest]), "min"

    def parameters(self, model: GaussianMixtureModel, settings: ClusteringSettings) -> dict:
        return {
            "covariance_type": settings.gmm_covariance_type,
            "reg_covar": settings.gmm_reg_covar,
            "n_init": settings.gmm_n_init,
        }

    def diagnostics(
        self,
        model: GaussianMixtureModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        mixture, probabilities = model.mixture, assignment.memberships
        weights = mixture.weights_[order]
        top = probabilities.max(axis=1)
        own_probability = probabilities[np.arange(len(X)), assignment.labels]
        extras = per_cluster(
            own_probability, assignment.labels, model.n_clusters, "probability_stats",
            stats=("mean", "std", "min", "max", "median"),
        )
        variances = _feature_variances(mixture)[order]
        for label, extra in extras.items():
            extra["mixture_weight"] = float(weights[label])
            extra["covariance_info"] = {
                "type": mixture.covariance_type,
                "feature_variances": dict(zip(features, map(float, variances[label]))),
            }
        high, low = int((top >= HIGH_CONFIDENCE).sum()), int((top < LOW_CONFIDENCE).sum())
        return Diagnostics(
            metrics={
                "bic": float(mixture.bic(X)),
                "aic": float(mixture.aic(X)),
                "avg_log_likelihood": float(mixture.score(X)),
                "converged": bool(mixture.converged_),
                "n_iter": int(mixture.n_iter_),
            },
            cluster_extras=extras,
            root_extras={
                "mixture_weights": [float(weight) for weight in weights],
                "uncertainty_metrics": {
                    "avg_max_probability": float(top.mean()),
                    "high_confidence_count": high,
                    "high_confidence_pct": 100.0 * high / len(X),
                    "high_confidence_threshold": HIGH_CONFIDENCE,
                    "low_confidence_count": low,
                    "low_confidence_pct": 100.0 * low / len(X),
                    "low_confidence_threshold": LOW_CONFIDENCE,
                    "avg_entropy": float(membership_entropy(probabilities).mean()),
                },
            },
        )


def _feature_variances(mixture: GaussianMixture) -> np.ndarray:
    """(n_components, n_features) variance of each feature within each component (scaled space)."""
    covariances, n_components = mixture.covariances_, mixture.n_components
    n_features = mixture.means_.shape[1]
    return {
        "full": lambda: np.diagonal(covariances, axis1=1, axis2=2),
        "tied": lambda: np.tile(np.diag(covariances), (n_components, 1)),
        "diag": lambda: covariances,
        "spherical": lambda: np.repeat(covariances[:, None], n_features, axis=1),
    }[mixture.covariance_type]()

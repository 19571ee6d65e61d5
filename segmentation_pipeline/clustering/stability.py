"""Bootstrap stability: would the segments come out the same from a slightly different customer base?

Each bootstrap draws customers with replacement (capped at bootstrap_sample_size for speed), refits
the method with the chosen k from a different seed, and compares the refit's labels with the full
fit's labels on the same customers by adjusted Rand index (1 = identical partition, ~0 = chance).
The resamples depend on the seed and the number of customers only, so every method is tested on
the same ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from segmentation_pipeline.clustering.base import (
    ClusteringMethod,
    ClusteringSettings,
    UnsupportedDataError,
)


def bootstrap_rows(n: int, settings: ClusteringSettings) -> list[np.ndarray]:
    size = min(n, settings.bootstrap_sample_size)
    return [
        np.random.default_rng([settings.seed, replicate]).integers(0, n, size=size)
        for replicate in range(settings.bootstraps)
    ]


def bootstrap_stability(
    method: ClusteringMethod,
    X: np.ndarray,
    k: int | None,
    labels: np.ndarray,
    settings: ClusteringSettings,
) -> dict:
    """{"stability_ari_mean", "stability_ari_min"} over the bootstraps (None when there are none)."""
    scores = [_refit_agreement(method, X, rows, k, labels, settings, settings.seed + 1 + replicate)
              for replicate, rows in enumerate(bootstrap_rows(len(X), settings))]
    return {
        "stability_ari_mean": float(np.mean(scores)) if scores else None,
        "stability_ari_min": float(np.min(scores)) if scores else None,
    }


def _refit_agreement(method, X, rows, k, labels, settings, seed) -> float:
    """ARI of one refit with the full fit on the resampled customers; a refit that finds no structure
    at all (UnsupportedDataError) agrees with nothing: 0."""
    try:
        refit = method.fit(X[rows], k, settings, seed).assign(X[rows]).labels
    except UnsupportedDataError:
        return 0.0
    return adjusted_rand_score(labels[rows], refit)

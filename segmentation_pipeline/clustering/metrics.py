"""Quality metrics shared by every method, all measured in the prepared (scaled) feature space so
that methods are comparable with each other.

Silhouette is quadratic in the number of customers, so it is computed on the fixed silhouette sample;
its pairwise distances are computed once per run and reused for every candidate k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import entr
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segmentation_pipeline.clustering.base import ClusterModel


class SilhouetteScorer:
    """Mean silhouette of labelings of one fixed sample of prepared rows."""

    def __init__(self, sample: np.ndarray):
        self.sample = sample
        self._distances: np.ndarray | None = None

    @property
    def distances(self) -> np.ndarray:
        """Euclidean distances within the sample, computed once; float32 halves the memory of the
        n x n matrix and is ample precision for a mean silhouette."""
        if self._distances is None:
            squared_norms = np.einsum("ij,ij->i", self.sample, self.sample)
            squared = self.sample @ (-2.0 * self.sample.T)
            squared += squared_norms[:, None]
            squared += squared_norms[None, :]
            np.maximum(squared, 0.0, out=squared)
            np.fill_diagonal(squared, 0.0)
            self._distances = np.sqrt(squared, out=squared).astype(np.float32)
        return self._distances

    def score(self, labels: np.ndarray) -> float | None:
        """sklearn.metrics.silhouette_score semantics (singletons score 0), via one matrix
        product per labeling; None when there are fewer than 2 or more than n - 1 groups."""
        groups, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        n = len(labels)
        if not 2 <= len(groups) <= n - 1:
            return None
        rows = np.arange(n)
        one_hot = np.zeros((n, len(groups)), dtype=np.float32)
        one_hot[rows, inverse] = 1.0
        sums = (self.distances @ one_hot).astype(np.float64)  # distance sum to each group
        own_size = counts[inverse]
        within = sums[rows, inverse] / np.maximum(own_size - 1, 1)
        mean_to_group = sums / counts
        mean_to_group[rows, inverse] = np.inf
        nearest_other = mean_to_group.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            silhouette = (nearest_other - within) / np.maximum(within, nearest_other)
        silhouette[own_size == 1] = 0.0
        return float(np.nan_to_num(silhouette).mean())

    def score_model(self, model: ClusterModel) -> float | None:
        return self.score(model.assign(self.sample).labels)


def quality_metrics(X: np.ndarray, labels: np.ndarray, silhouette: float | None) -> dict:
    """Silhouette (sampled, given), Davies-Bouldin and Calinski-Harabasz (of the rows given: the
    customers the model was fitted on, all of them up to `fit_sample_size`)."""
    separable = 2 <= len(np.unique(labels)) <= len(labels) - 1
    return {
        "silhouette": silhouette,
        "davies_bouldin": float(davies_bouldin_score(X, labels)) if separable else None,
        "calinski_harabasz": float(calinski_harabasz_score(X, labels)) if separable else None,
    }


def summary_stats(values: np.ndarray, stats: Sequence[str] = ("mean", "std", "min", "max")) -> dict:
    """Plain-float statistics of `values`; std is the sample std (None below 2 values, all None
    when empty) like the profile's feature statistics."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return dict.fromkeys(stats)
    compute = {
        "mean": np.mean,
        "std": lambda v: np.std(v, ddof=1) if v.size > 1 else None,
        "min": np.min,
        "max": np.max,
        "median": np.median,
    }
    return {name: _plain(compute[name](values)) for name in stats}


def per_cluster(values: np.ndarray, labels: np.ndarray, n_clusters: int, key: str, **kwargs) -> dict:
    """{label: {key: summary_stats(values of its members)}} for every label 0..n_clusters-1."""
    members = grouped(values, labels, range(n_clusters))
    return {label: {key: summary_stats(group, **kwargs)} for label, group in zip(range(n_clusters), members)}


def grouped(values: np.ndarray, labels: np.ndarray, groups: Sequence[int]) -> list[np.ndarray]:
    """The rows of `values` of each group (in `groups` order, rows in their original order), from one
    stable sort of the labels: one pass over millions of customers instead of one per cluster."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    groups = np.asarray(list(groups))
    starts, ends = np.searchsorted(ordered, groups, side="left"), np.searchsorted(ordered, groups, side="right")
    return [np.asarray(values)[order[start:end]] for start, end in zip(starts, ends)]


def group_means(X: np.ndarray, labels: np.ndarray, groups: Sequence[int]) -> np.ndarray:
    """Mean row of X per group (rows: `groups` in order), by one bincount per column."""
    labels, groups = np.asarray(labels), np.asarray(list(groups))
    position = np.searchsorted(groups, labels)
    known = (position < len(groups)) & (groups[np.minimum(position, len(groups) - 1)] == labels)
    counts = np.bincount(position[known], minlength=len(groups))
    sums = np.stack([np.bincount(position[known], weights=column[known], minlength=len(groups)) for column in np.asarray(X, dtype=float).T], axis=1)
    return sums / np.maximum(counts, 1)[:, None]


def membership_entropy(memberships: np.ndarray) -> np.ndarray:
    """Shannon entropy (natural log) of each row of a membership / probability matrix."""
    return entr(memberships).sum(axis=1)


def _plain(value):
    return None if value is None else float(value)

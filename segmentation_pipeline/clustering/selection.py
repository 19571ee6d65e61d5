"""Choosing k: candidate models are fitted on a sample and scored; plus the seed-derived samples
that every method shares.

All samples are prefixes of one permutation derived from the seed and the number of customers only,
so every method scores silhouette on the same customers, and smaller samples nest inside larger
ones (the silhouette sample lies inside the selection sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segmentation_pipeline.clustering.base import ClusteringMethod, ClusteringSettings
from segmentation_pipeline.clustering.metrics import SilhouetteScorer
from segmentation_pipeline.errors import InputDataError

STRAIGHT = 1e-9  # distances below the chord up to this are rounding noise on a straight fall


@dataclass(frozen=True)
class Selection:
    k: int | None  # None for methods that find the number of clusters themselves
    source: str  # "auto" | "fixed" | "density"
    curve: dict | None  # {"criterion", "k", "score", "chosen_k", "rule"} when k was chosen


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of `size` of `n` rows (all rows when size >= n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def select_k(
    method: ClusteringMethod, X: np.ndarray, settings: ClusteringSettings, silhouette: SilhouetteScorer
) -> Selection:
    """The k to fit with: fixed, or the best candidate by the method's criterion on the selection
    sample (silhouette is measured on the silhouette sample)."""
    if not method.chooses_k:
        return Selection(None, "density", None)
    largest = len(silhouette.sample) - 1  # silhouette needs at most n - 1 clusters
    if settings.k != "auto":
        if settings.k > largest:
            raise InputDataError(f"customer features: k={settings.k} needs more than {largest + 1} customers")
        return Selection(settings.k, "fixed", None)
    ks = list(range(settings.k_min, min(settings.k_max, largest) + 1))
    if not ks:
        raise InputDataError(
            f"customer features: {largest + 1} customers are too few to try k >= {settings.k_min}"
        )
    sample = X[sample_rows(len(X), settings.selection_sample_size, settings.seed)]
    scores = [
        method.selection_score(model, sample, silhouette)
        for model in method.candidates(sample, ks, settings)
    ]
    k, rule = method.choose(ks, scores)
    curve = {"criterion": method.criterion, "k": ks, "score": scores, "chosen_k": k, "rule": rule}
    return Selection(k, "auto", curve)


def elbow_index(scores: Sequence[float]) -> int:
    """Kneedle elbow of a falling curve: with both axes scaled to [0, 1], the point farthest below
    the chord from the first to the last point; the last point when nothing lies below the chord
    (a straight or ever-steeper fall has no elbow to stop at)."""
    values = np.asarray(scores, dtype=float)
    drop = values[0] - values[-1]
    if drop <= 0:
        return int(np.argmin(values))
    scaled = (values - values[-1]) / drop  # 1 at the first point, 0 at the last
    chord = np.linspace(1.0, 0.0, len(values))
    below = chord - scaled
    return int(np.argmax(below)) if below.max() > STRAIGHT else len(values) - 1

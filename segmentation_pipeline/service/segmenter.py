"""One published method ready to serve: its bundle plus everything a response needs, computed at load.

At load the training table (one row per customer, every feature the bundle uses) is pushed once
through the bundle, which gives each segment its centre in the bundle's prepared feature space (log1p
and standard scaling, the space the model clusters in), the per-segment statistics and the placement
of every known customer. A request then costs one vectorised pass: `place` on an (n, features)
matrix prepares it, asks the bundle for labels and confidence, and measures the distances to the
precomputed centres. Single rows are stacked into such matrices by the micro-batcher, so the bundle
is called once per burst of concurrent requests, not once per request.

`Segmenter` serves numeric features (retail customers); `service.leads.LeadSegmenter` serves leads given
by their fields, through the lead bundle's own preparation. Both place through `Placer`.

Definitions the responses document:
- confidence: the bundle's own (k-means family: 1 - d_nearest / d_second; GMM: top posterior;
  fuzzy c-means: top membership; HDBSCAN: membership strength of the nearest fitted customer).
- distance_to_center: Euclidean distance, in the prepared space, to the mean of the segment's
  published customers (for k-means this is the k-means centre).
- second segment: the nearest other centre in that space.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sklearn

from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.clustering.metrics import group_means

STATISTICS = ("mean", "median", "min", "max")


@dataclass(frozen=True)
class Segment:
    segment_id: int
    name: str  # the persona name
    value_tier: str
    rank: int
    size: int
    percentage: float
    stats: dict  # retail: column -> mean / median / min / max over the segment; leads: its conversion figures


@dataclass(frozen=True)
class Placements:
    """Where each row of a matrix lands; arrays aligned with the rows."""

    segment: np.ndarray  # int segment id
    confidence: np.ndarray  # [0, 1]
    distance: np.ndarray  # to the segment's centre
    second: np.ndarray  # int id of the nearest other segment, -1 when there is only one
    second_distance: np.ndarray  # nan when there is no second segment

    def row(self, i: int) -> Placements:
        """Row i alone."""
        return Placements(*(values[i : i + 1] for values in (
            self.segment, self.confidence, self.distance, self.second, self.second_distance)))


class Placer:
    """Placement of prepared rows: the bundle's labels and confidence, distances to segment centres.

    `centres` are the means, in the bundle's prepared space, of the published entities of each segment
    (`prepared`, labelled `labels` by the bundle); subclasses prepare their own kind of input."""

    def __init__(self, bundle: ModelBundle, prepared: np.ndarray, labels: np.ndarray, segment_ids: Iterable[int]):
        self.bundle = bundle
        ids = np.array(sorted(segment_ids))
        self.centres = group_means(prepared, labels, ids)
        self._centre_ids = ids

    def place_prepared(self, prepared: np.ndarray) -> Placements:
        """Segments of rows already in the bundle's prepared space, one vectorised pass."""
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            assignment = self.bundle.assign(prepared)
        return self._placements(prepared, assignment)

    def _placements(self, prepared: np.ndarray, assignment) -> Placements:
        differences = prepared[:, None, :] - self.centres[None, :, :]
        distances = np.sqrt(np.einsum("ijk,ijk->ij", differences, differences))
        nearest = distances.argmin(axis=1)
        # HDBSCAN kept as noise (-1) has no segment of its own: it takes the nearest centre, confidence 0.
        noise = assignment.labels < 0
        columns = np.where(noise, nearest, np.searchsorted(self._centre_ids, assignment.labels))
        rows = np.arange(len(prepared))
        confidence = np.where(noise, 0.0, np.clip(assignment.confidence, 0.0, 1.0))
        distance = distances[rows, columns]
        if len(self._centre_ids) == 1:
            return Placements(self._centre_ids[columns], confidence, distance, np.full(len(prepared), -1),
                              np.full(len(prepared), np.nan))
        others = distances.copy()
        others[rows, columns] = np.inf
        second = others.argmin(axis=1)
        return Placements(self._centre_ids[columns], confidence, distance, self._centre_ids[second],
                          others[rows, second])


class Segmenter(Placer):
    """A method's bundle on numeric features (retail customers), with its segments, centres, feature
    defaults and known entities."""

    stack = staticmethod(np.concatenate)  # how the micro-batcher joins single-row inputs

    def __init__(
        self,
        method: str,
        model_version: str,
        bundle: ModelBundle,
        personas: dict,
        table: pd.DataFrame,
        id_column: str,
        stat_columns: Sequence[str],
    ):
        self.method = method
        self.model_version = model_version
        self.features: tuple[str, ...] = tuple(bundle.features)
        self.feature_index = {name: position for position, name in enumerate(self.features)}
        training = table[list(self.features)].to_numpy(dtype=float)
        # Documented default of a feature a request leaves out: its median over the published entities.
        self.defaults = np.median(training, axis=0)
        prepared = bundle.transform.transform(table)
        labels = bundle.assign(prepared).labels
        self.segments = _segments(personas, labels, table, stat_columns or self.features)
        super().__init__(bundle, prepared, labels, self.segments)
        self.known = self.place(training)
        self.known_index = {str(key): row for row, key in enumerate(table[id_column].to_numpy())}

    def place(self, matrix: np.ndarray) -> Placements:
        """Segments of the rows of `matrix` (columns in `features` order), one vectorised pass."""
        # Rows reaching here are validated (finite, in range), so scikit-learn's own input and
        # parameter checks, most of the cost of placing one row, are skipped.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            prepared = self.bundle.transform.transform_values(matrix)
            assignment = self.bundle.assign(prepared)
        return self._placements(prepared, assignment)


def _segments(personas: dict, labels: np.ndarray, table: pd.DataFrame, stat_columns: Sequence[str]) -> dict[int, Segment]:
    """Segment id -> persona facts and statistics; every label must have exactly one persona."""
    by_cluster = {int(p["cluster_id"]): p for p in personas["personas"]}
    present = sorted(int(label) for label in np.unique(labels[labels >= 0]))
    missing = [label for label in present if label not in by_cluster]
    if missing:
        raise ValueError(f"personas of {personas.get('method')!r} lack segment(s) {missing}")
    grouped = table[list(stat_columns)].astype(float).groupby(labels)
    summary = {name: grouped.agg(name) for name in STATISTICS}
    segments = {}
    for label in present:
        persona = by_cluster[label]
        stats = {
            column: {name: float(summary[name].at[label, column]) for name in STATISTICS} for column in stat_columns
        }
        segments[label] = Segment(
            segment_id=label,
            name=str(persona["persona_name"]),
            value_tier=str(persona["value_tier"]),
            rank=int(persona["rank"]),
            size=int(persona["size"]),
            percentage=float(persona["percentage"]),
            stats=stats,
        )
    return segments

"""The persisted model of one method: everything needed to segment new customers, in one file.

A bundle holds the feature list and fitted preparation (log1p columns, scaler), the fitted model,
the map from the model's own cluster ids to the published labels, and version information. Training
labels are produced through the same `assign` path that `predict` uses, so predicting the training
customers reproduces their labels exactly.

The file is a joblib pickle of a small envelope (format name, format version, library versions)
around the bundle. `load` refuses a file of another format version or one written with another
scikit-learn release (pickled estimators are only guaranteed to load and behave identically on the
release that wrote them) or another numpy major version.
"""

from __future__ import annotations

import importlib.metadata
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from segmentation_pipeline.clustering.base import Assignment, ClusterModel
from segmentation_pipeline.clustering.preparation import FeatureTransform
from segmentation_pipeline.storage import atomic_path

BUNDLE_FORMAT = "segmentation_pipeline.clustering.ModelBundle"
BUNDLE_FORMAT_VERSION = 2  # 2: the hdbscan model carries its nearest-neighbour index


def _library_versions() -> dict[str, str]:
    return {
        "segmentation_pipeline": importlib.metadata.version("segmentation_pipeline"),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # published cluster labels, aligned with the input rows
    confidence: np.ndarray  # in [0, 1]; max membership / probability, or the method's margin
    memberships: np.ndarray | None = None  # (n, n_clusters) for soft methods


@dataclass
class ModelBundle:
    method: str
    transform: FeatureTransform
    model: ClusterModel
    label_map: np.ndarray  # model cluster id -> published label
    n_clusters: int
    params: dict
    trained_at: str = field(default_factory=_utc_now)  # UTC, ISO 8601
    format_version: int = BUNDLE_FORMAT_VERSION
    library_versions: dict[str, str] = field(default_factory=_library_versions)

    @property
    def features(self) -> list[str]:
        """Columns `predict` needs (behaviour features, then any purchase-mix spend columns)."""
        return self.transform.input_columns

    @property
    def version(self) -> str:
        """e.g. "0.1.0/bundle-2": the package release that trained it and the file format."""
        return f"{self.library_versions['segmentation_pipeline']}/bundle-{self.format_version}"

    def assign(self, prepared: np.ndarray) -> Assignment:
        """Published labels, memberships and confidence for an already prepared matrix."""
        return self.publish(self.model.assign(prepared))

    def publish(self, raw: Assignment) -> Assignment:
        """The model's assignment in published labels (memberships columns reordered to match)."""
        labels = np.where(raw.labels >= 0, self.label_map[np.maximum(raw.labels, 0)], -1)
        memberships = None if raw.memberships is None else raw.memberships[:, np.argsort(self.label_map)]
        return Assignment(labels, memberships, raw.confidence, raw.noise)

    def predict(self, customer_features: pd.DataFrame) -> Prediction:
        """Segment customers given their feature rows (the columns listed in `features`)."""
        assignment = self.assign(self.transform.transform(customer_features))
        return Prediction(assignment.labels, assignment.confidence, assignment.memberships)

    def save(self, path: str | Path) -> Path:
        envelope = {
            "format": BUNDLE_FORMAT,
            "format_version": self.format_version,
            "library_versions": self.library_versions,
            "bundle": self,
        }
        with atomic_path(Path(path)) as temp:
            joblib.dump(envelope, temp, compress=3)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        try:
            envelope = joblib.load(path)
        except FileNotFoundError:
            raise
        except Exception as exc:  # a foreign or corrupt file fails in many different ways
            raise ValueError(f"{path}: not a readable model bundle ({type(exc).__name__}: {exc})") from None
        return cls._unwrap(envelope, path)

    @classmethod
    def from_bytes(cls, data: bytes, source: str | Path) -> ModelBundle:
        """The bundle in `data`, the bytes of a bundle file the caller has already read (and, e.g.,
        checked against a published sha256, so the file cannot change between check and load);
        `source` names them in errors."""
        try:
            envelope = joblib.load(io.BytesIO(data))
        except Exception as exc:  # a foreign or corrupt file fails in many different ways
            raise ValueError(f"{source}: not a readable model bundle ({type(exc).__name__}: {exc})") from None
        return cls._unwrap(envelope, source)

    @staticmethod
    def _unwrap(envelope: object, source: str | Path) -> ModelBundle:
        if not isinstance(envelope, dict) or envelope.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{source}: not a {BUNDLE_FORMAT} file")
        problems = _incompatibilities(envelope)
        if problems:
            raise ValueError(f"{source}: model bundle cannot be used here: {'; '.join(problems)}; retrain it")
        return envelope["bundle"]


def _incompatibilities(envelope: dict) -> list[str]:
    problems = []
    if envelope.get("format_version") != BUNDLE_FORMAT_VERSION:
        problems.append(
            f"format version {envelope.get('format_version')} (this release reads {BUNDLE_FORMAT_VERSION})"
        )
    written = envelope.get("library_versions", {})
    current = _library_versions()
    if written.get("scikit-learn") != current["scikit-learn"]:
        problems.append(f"written with scikit-learn {written.get('scikit-learn')}, running {current['scikit-learn']}")
    if str(written.get("numpy", "")).split(".")[0] != current["numpy"].split(".")[0]:
        problems.append(f"written with numpy {written.get('numpy')}, running {current['numpy']}")
    return problems

"""Customer clustering: one interface, five methods, shared preparation, selection, metrics and
model bundles. `run_method(name, customer_features, settings)` is the entry point."""

from segmentation_pipeline.clustering.base import (
    DEFAULT_FEATURES,
    DEFAULT_LOG1P_FEATURES,
    ClusteringResult,
    ClusteringSettings,
)
from segmentation_pipeline.clustering.bundle import ModelBundle, Prediction
from segmentation_pipeline.clustering.runner import METHODS, run_method

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_LOG1P_FEATURES",
    "METHODS",
    "ClusteringResult",
    "ClusteringSettings",
    "ModelBundle",
    "Prediction",
    "run_method",
]

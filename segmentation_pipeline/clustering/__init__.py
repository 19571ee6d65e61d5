"""Customer clustering: one interface, five methods, shared preparation, selection, metrics and
model bundles. `run_method(name, customer_features, settings, feature_set)` fits one feature set,
`run_feature_sets(name, customer_features, settings)` every configured one."""

from segmentation_pipeline.clustering.base import (
    DEFAULT_FEATURES,
    DEFAULT_LOG1P_FEATURES,
    ClusteringResult,
    ClusteringSettings,
)
from segmentation_pipeline.clustering.bundle import ModelBundle, Prediction
from segmentation_pipeline.clustering.preparation import FEATURE_SETS
from segmentation_pipeline.clustering.runner import (
    METHODS,
    run_feature_sets,
    run_method,
    unavailable_feature_sets,
)

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_LOG1P_FEATURES",
    "FEATURE_SETS",
    "METHODS",
    "ClusteringResult",
    "ClusteringSettings",
    "ModelBundle",
    "Prediction",
    "run_feature_sets",
    "run_method",
    "unavailable_feature_sets",
]

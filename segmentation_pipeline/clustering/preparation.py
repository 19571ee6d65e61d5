"""Feature preparation shared by every method: select columns, log1p the skewed ones, standard-scale.

Standard scaling can be switched off for features that are already on a deliberate common scale
(e.g. one-hot encoded categories, where scaling would blow rare categories up to dominate distances).

The fitted `FeatureTransform` travels inside the model bundle, so new customers are prepared exactly
like the training customers were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from segmentation_pipeline.errors import InputDataError

CUSTOMER_ID = "customer_id"
SOURCE = "customer features"


@dataclass(frozen=True)
class FeatureTransform:
    """Fitted preparation: which columns, which of them get log1p, and the fitted scaler (an identity
    scaler when standardization is off)."""

    features: tuple[str, ...]
    log1p_features: tuple[str, ...]
    scaler: StandardScaler

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        features: Sequence[str],
        log1p_features: Sequence[str],
        standardize: bool = True,
    ) -> tuple[FeatureTransform, np.ndarray]:
        """Fit on `frame`; returns the transform and the prepared (scaled) matrix."""
        features = tuple(features)
        log1p = tuple(name for name in features if name in set(log1p_features))
        raw = _log_matrix(frame, features, log1p)
        scaler = StandardScaler(with_mean=standardize, with_std=standardize).fit(raw)
        transform = cls(features, log1p, scaler)
        return transform, transform._scaled(raw)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The prepared matrix of `frame` (extra columns are ignored)."""
        return self._scaled(_log_matrix(frame, self.features, self.log1p_features))

    def _scaled(self, matrix: np.ndarray) -> np.ndarray:
        """Scaled in place of a copy when there is no scaling (saves a copy of the whole matrix)."""
        return matrix if self.scaler.scale_ is None and self.scaler.mean_ is None else self.scaler.transform(matrix)

    def describe(self) -> dict:
        """What was done, for the result's params (means/scales are after log1p)."""
        described = {"features": list(self.features), "log1p": list(self.log1p_features)}
        if self.scaler.scale_ is None:
            return {**described, "scaler": "none"}
        return {
            **described,
            "scaler": "StandardScaler",
            "means": dict(zip(self.features, map(float, self.scaler.mean_))),
            "scales": dict(zip(self.features, map(float, self.scaler.scale_))),
        }


def customer_ids(frame: pd.DataFrame) -> np.ndarray:
    if CUSTOMER_ID not in frame.columns:
        raise InputDataError(f"{SOURCE}: missing column '{CUSTOMER_ID}' (one row per customer is expected)")
    return frame[CUSTOMER_ID].to_numpy()


def _log_matrix(frame: pd.DataFrame, features: tuple[str, ...], log1p: tuple[str, ...]) -> np.ndarray:
    """Float matrix of `features` with log1p applied to `log1p`; raises naming any bad column."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise InputDataError(
            f"{SOURCE}: missing feature column(s) {', '.join(repr(name) for name in missing)} "
            f"(configured features: {', '.join(features)}; available: {', '.join(map(str, frame.columns))})"
        )
    matrix = np.empty((len(frame), len(features)))  # filled column by column: no second copy to stack
    for position, name in enumerate(features):
        try:
            values = pd.to_numeric(frame[name], errors="raise").to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputDataError(f"{SOURCE}: feature column '{name}' is not numeric") from None
        if name in log1p:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.log1p(values)
        matrix[:, position] = values
    bad = ~np.isfinite(matrix)
    if bad.any():
        problems = ", ".join(
            f"'{name}' ({count} rows)" for name, count in zip(features, bad.sum(axis=0)) if count
        )
        raise InputDataError(
            f"{SOURCE}: feature column(s) {problems} have missing or infinite values"
            + (f" (log1p columns {', '.join(log1p)} must be > -1)" if log1p else "")
        )
    return matrix

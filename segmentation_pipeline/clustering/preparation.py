"""Feature preparation shared by every method: select columns, log1p the skewed ones, standard-scale,
and for the "behaviour_mix" feature set append what customers buy.

Feature sets (FEATURE_SETS):
- "behaviour": the configured behaviour features (recency, frequency, money, tenure, returns).
- "behaviour_mix": the same plus each customer's spend mix over the `mix_prefix` columns (departments).
  The mix is the customer's share of spend per department, square-rooted (the Hellinger transform:
  a 5 % share is no longer negligible next to a 60 % one, and a one-order customer's noisy shares are
  damped), reduced by PCA to `mix_components` components, and scaled as one block so that its total
  variance is `mix_weight` times the behaviour block's (each standardised behaviour feature has
  variance 1). Neither side dominates however many departments the shop has.

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
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from segmentation_pipeline.errors import InputDataError

CUSTOMER_ID = "customer_id"
SOURCE = "customer features"
MIX_FEATURE_SET = "behaviour_mix"  # the feature set with the purchase mix
FEATURE_SETS = ("behaviour", MIX_FEATURE_SET)
MIX_COMPONENT_PREFIX = "mix_"


def mix_columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    """The spend columns (e.g. `dept_value:*`) the purchase mix is built from, in table order."""
    return [str(column) for column in frame.columns if str(column).startswith(prefix)]


@dataclass(frozen=True)
class PurchaseMix:
    """Fitted purchase-mix block: spend shares -> square root -> PCA -> one block scale."""

    columns: tuple[str, ...]
    pca: PCA
    scale: float
    weight: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Sequence[str], components: int, weight: float,
            behaviour_variance: float) -> tuple[PurchaseMix, np.ndarray]:
        roots = _root_shares(_spend_matrix(frame, tuple(columns)))
        pca = PCA(n_components=min(components, len(columns), len(frame)), random_state=0)
        reduced = pca.fit_transform(roots)
        variance = float(reduced.var(axis=0).sum())
        scale = float(np.sqrt(weight * behaviour_variance / variance)) if variance > 0 else 0.0
        return cls(tuple(columns), pca, scale, weight), reduced * scale

    @property
    def names(self) -> list[str]:
        return [f"{MIX_COMPONENT_PREFIX}{index}" for index in range(1, self.pca.n_components_ + 1)]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform_values(_spend_matrix(frame, self.columns))

    def transform_values(self, spend: np.ndarray) -> np.ndarray:
        """The block of validated spend values laid out as (rows, `columns`)."""
        return self.pca.transform(_root_shares(spend)) * self.scale

    def describe(self) -> dict:
        return {
            "columns": list(self.columns),
            "transform": "square root of spend shares (Hellinger), then PCA",
            "components": int(self.pca.n_components_),
            "explained_variance_ratio": [float(v) for v in self.pca.explained_variance_ratio_],
            "weight": self.weight,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class FeatureTransform:
    """Fitted preparation: which columns, which of them get log1p, the fitted scaler (an identity
    scaler when standardization is off) and, for the "behaviour_mix" feature set, the fitted
    purchase-mix block."""

    features: tuple[str, ...]
    log1p_features: tuple[str, ...]
    scaler: StandardScaler
    mix: PurchaseMix | None = None

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        features: Sequence[str],
        log1p_features: Sequence[str],
        mix: Sequence[str] = (),
        mix_components: int = 8,
        mix_weight: float = 1.0,
        standardize: bool = True,
    ) -> tuple[FeatureTransform, np.ndarray]:
        """Fit on `frame`; returns the transform and the prepared (scaled) matrix. `mix` names the
        spend columns of the purchase-mix block (none: behaviour features only)."""
        features = tuple(features)
        log1p = tuple(name for name in features if name in set(log1p_features))
        raw = _log_matrix(frame, features, log1p)
        scaler = StandardScaler(with_mean=standardize, with_std=standardize).fit(raw)
        transform = cls(features, log1p, scaler)
        prepared = transform._scaled(raw)
        if not mix:
            return transform, prepared
        block, mixed = PurchaseMix.fit(frame, mix, mix_components, mix_weight, float(prepared.var(axis=0).sum()))
        return cls(features, log1p, scaler, block), np.hstack([prepared, mixed])

    @property
    def columns(self) -> list[str]:
        """Names of the prepared matrix's columns (behaviour features, then mix_1, mix_2, ...)."""
        return list(self.features) + (self.mix.names if self.mix else [])

    @property
    def input_columns(self) -> list[str]:
        """Columns a customer table needs for `transform`."""
        return list(self.features) + (list(self.mix.columns) if self.mix else [])

    def transform(self, frame: pd.DataFrame, chunk_rows: int | None = None) -> np.ndarray:
        """The prepared matrix of `frame` (extra columns are ignored); with `chunk_rows`, prepared
        that many rows at a time into one matrix, so the intermediate matrices of millions of
        customers (their spend, its shares) never exist whole."""
        if chunk_rows is not None and len(frame) > chunk_rows:
            prepared = np.empty((len(frame), len(self.columns)))
            for start in range(0, len(frame), chunk_rows):
                prepared[start : start + chunk_rows] = self.transform(frame.iloc[start : start + chunk_rows])
            return prepared
        prepared = self._scaled(_log_matrix(frame, self.features, self.log1p_features))
        return np.hstack([prepared, self.mix.transform(frame)]) if self.mix else prepared

    def transform_values(self, values: np.ndarray) -> np.ndarray:
        """The prepared matrix of raw values already laid out as (rows, `input_columns`) floats.

        The same preparation as `transform` without going through a DataFrame, for callers that
        hold validated numbers (finite; log1p features > -1) and need one row in microseconds, such
        as a prediction service; `transform` stays the checked path for tables.
        """
        values = np.asarray(values, dtype=float)
        logged = values[:, : len(self.features)].copy()  # a copy: the caller's values stay raw
        columns = [position for position, name in enumerate(self.features) if name in self.log1p_features]
        logged[:, columns] = np.log1p(logged[:, columns])
        prepared = self._scaled(logged)
        if not self.mix:
            return prepared
        return np.hstack([prepared, self.mix.transform_values(values[:, len(self.features) :])])

    def _scaled(self, matrix: np.ndarray) -> np.ndarray:
        """Scaled, or the matrix itself when standardization is off (saves a copy of the whole matrix)."""
        return matrix if self.scaler.scale_ is None and self.scaler.mean_ is None else self.scaler.transform(matrix)

    def describe(self) -> dict:
        """What was done, for the result's params. The scaler's means and scales are those of the
        transformed values, so log1p columns are keyed `log1p(<feature>)` to say so."""
        scaled = [f"log1p({name})" if name in self.log1p_features else name for name in self.features]
        description = {
            "features": list(self.features),
            "log1p": list(self.log1p_features),
        }
        if self.scaler.scale_ is None:
            description["scaler"] = "none"
        else:
            description.update(
                scaler="StandardScaler",
                means=dict(zip(scaled, map(float, self.scaler.mean_))),
                scales=dict(zip(scaled, map(float, self.scaler.scale_))),
            )
        if self.mix:
            description["purchase_mix"] = self.mix.describe()
        return description


def customer_ids(frame: pd.DataFrame) -> np.ndarray:
    """The customer ids in row order. Text ids become one fixed-width text array, not an array of
    Python strings: every later step loads the stored result, and half a million string objects
    take seconds to unpickle each time, while a fixed-width array is memory-mapped in no time."""
    if CUSTOMER_ID not in frame.columns:
        raise InputDataError(f"{SOURCE}: missing column '{CUSTOMER_ID}' (one row per customer is expected)")
    ids = frame[CUSTOMER_ID].to_numpy()
    return ids.astype(str) if ids.dtype == object else ids


def _log_matrix(frame: pd.DataFrame, features: tuple[str, ...], log1p: tuple[str, ...]) -> np.ndarray:
    """Float matrix of `features` with log1p applied to `log1p`; raises naming any bad column."""
    require_features(features, list(frame.columns))
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


def require_features(features: Sequence[str], available: Sequence[str]) -> None:
    """InputDataError naming the missing features and every available column, if any is missing."""
    present = set(available)
    missing = [name for name in features if name not in present]
    if missing:
        raise InputDataError(
            f"{SOURCE}: missing feature column(s) {', '.join(repr(name) for name in missing)} "
            f"(configured features: {', '.join(features)}; available: {', '.join(map(str, available))})"
        )


def _spend_matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """The spend columns as floats, missing cells as no spend; missing columns or non-numeric cells
    raise naming the column, like the behaviour features."""
    present = frame[[column for column in columns if column in frame.columns]].fillna(0.0)
    return _log_matrix(present, columns, ())


def _root_shares(spend: np.ndarray) -> np.ndarray:
    """Square roots of each customer's spend shares (all zero without spend); negative cells (net
    returns) count as no spend."""
    spend = np.clip(spend, 0.0, None)
    totals = spend.sum(axis=1, keepdims=True)
    return np.sqrt(np.divide(spend, totals, out=np.zeros_like(spend), where=totals > 0))

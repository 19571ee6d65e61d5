"""Conversion per cluster: rate, counts, a 95% Wilson interval, lift over the overall rate, value tier.

The Wilson interval (not rate ± 1.96·SE) stays inside [0, 1] and is honest for small clusters and
rates near 0, which is where lead data lives. A cluster smaller than `min_cluster_size` gets no tier:
its rate is flagged as too uncertain to rank rather than presented with false confidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation_pipeline.leads.settings import LeadsSettings

Z_95 = 1.959963984540054
RATE_DECIMALS = 4  # rates are published, and tiered, at this precision
CONVERSION_COLUMNS = (
    "cluster",
    "total_records",
    "conversions",
    "non_conversions",
    "conversion_rate",
    "ci_low",
    "ci_high",
    "lift",
    "value_tier",
    "small_sample",
)


def wilson_interval(successes, totals, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of successes / totals (arrays); (0, 1) where the total is 0."""
    successes = np.asarray(successes, dtype=float)
    totals = np.asarray(totals, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = successes / totals
        denominator = 1 + z**2 / totals
        centre = (rate + z**2 / (2 * totals)) / denominator
        half = z * np.sqrt(rate * (1 - rate) / totals + z**2 / (4 * totals**2)) / denominator
    empty = totals == 0
    low = np.where(empty, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(empty, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def conversion_by_cluster(labels: np.ndarray, is_sale: np.ndarray, n_clusters: int, settings: LeadsSettings) -> pd.DataFrame:
    """One row per cluster 0..n_clusters-1 (CONVERSION_COLUMNS); value_tier is None when small_sample."""
    labels = np.asarray(labels, dtype=np.int64)
    converted = np.asarray(is_sale, dtype=bool)
    totals = np.bincount(labels, minlength=n_clusters)
    conversions = np.bincount(labels, weights=converted, minlength=n_clusters).astype(np.int64)
    table = conversion_table(pd.Index(np.arange(n_clusters), name="cluster"), totals, conversions, settings)
    overall = converted.mean() if len(converted) else 0.0
    table["lift"] = table["conversion_rate"] / overall if overall > 0 else np.nan
    return table.reset_index()[list(CONVERSION_COLUMNS)]


def conversion_table(index: pd.Index, totals, conversions, settings: LeadsSettings) -> pd.DataFrame:
    """Counts, rate, Wilson interval, small-sample flag and tier for groups given by their counts."""
    totals = np.asarray(totals, dtype=np.int64)
    conversions = np.asarray(conversions, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(totals > 0, conversions / np.maximum(totals, 1), 0.0)
    low, high = wilson_interval(conversions, totals)
    small = totals < settings.min_cluster_size
    tiers = [None if is_small else settings.value_tiers.tier_of(round(r, RATE_DECIMALS)) for r, is_small in zip(rate, small)]
    return pd.DataFrame(
        {
            "total_records": totals,
            "conversions": conversions,
            "non_conversions": totals - conversions,
            "conversion_rate": rate,
            "ci_low": low,
            "ci_high": high,
            "value_tier": pd.Series(tiers, index=index, dtype="object"),  # object keeps None (str would make NaN)
            "small_sample": small,
        },
        index=index,
    )


def conversion_by(values: pd.Series, is_sale: np.ndarray) -> pd.DataFrame:
    """leads, conversions and conversion_rate per value of `values` (e.g. lead source), most leads first."""
    frame = pd.DataFrame({"value": values.astype("object").to_numpy(), "converted": np.asarray(is_sale, dtype=bool)})
    grouped = frame.groupby("value", sort=False)["converted"].agg(leads="size", conversions="sum")
    grouped["conversion_rate"] = grouped["conversions"] / grouped["leads"]
    return grouped.sort_values(["leads", "conversions"], ascending=False, kind="stable")

"""The two data sets the segment-quality targets are measured on, built through the Dagster-free core
(generate or read -> map columns -> clean -> RFM -> features) and clustered once per test session.

- the embedded default: 2,000 synthetic customers, 12 months from 2025-01, seed 42 (10 known personas);
- the Online Retail sample beside the checkout (no departments, so only the behaviour feature set).
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from segmentation_pipeline import readers
from segmentation_pipeline.clustering import METHODS, ClusteringResult, run_feature_sets
from segmentation_pipeline.config import CANONICAL_COLUMNS
from segmentation_pipeline.retail import cleaning, features, rfm, sources, synthetic
from segmentation_pipeline_tests.conftest import ONLINE_RETAIL_TRANSACTIONS, SHARED_DATASET

EMBEDDED_DEFAULT = {"customers": 2000, "months": 12, "seed": 42, "start_month": "2025-01"}


def _features(raw: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    cleaned = cleaning.clean_transactions(raw, as_of="2030-01-01").cleaned
    basic = features.basic_features(cleaned, rfm.compute_rfm(cleaned))
    return features.enriched_features(cleaned, basic, customers)


@cache
def embedded_features() -> pd.DataFrame:
    data = synthetic.generate(**EMBEDDED_DEFAULT)
    identity = {name: (name if name in data.transactions.columns else None) for name in CANONICAL_COLUMNS}
    raw = sources.map_columns(data.transactions, identity, None, source="synthetic data")
    return _features(raw, data.customers)


@cache
def online_retail_features() -> pd.DataFrame:
    frame = readers.read_table(SHARED_DATASET)
    raw = sources.map_columns(frame, ONLINE_RETAIL_TRANSACTIONS["columns"], None, source=str(SHARED_DATASET))
    return _features(raw, None)


@cache
def runs(data_set: str) -> tuple[ClusteringResult, ...]:
    """Every method on every feature set the data can feed, default settings."""
    table = embedded_features() if data_set == "embedded" else online_retail_features()
    return tuple(result for method in METHODS for result in run_feature_sets(method, table)[0].values())

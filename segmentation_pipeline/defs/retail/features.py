"""Feature stage: RFM with named segments, then the basic and enriched customer tables."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.retail import features, rfm

KINDS = {"pandas", "parquet"}


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    name="rfm",
    group_name="features",
    kinds=KINDS,
    owners=OWNERS,
    description=(
        "One row per customer with at least one purchase: recency (days before the day after the last "
        "transaction), frequency (distinct orders), monetary (gross purchases; net of returns in "
        "`monetary_net`), R/F/M quintile scores 1-5 and the named segment from the R x F grid."
    ),
)
def rfm_table(cleaned_transactions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    table = rfm.compute_rfm(cleaned_transactions)
    mix = table["segment"].value_counts().sort_index()
    return dg.Output(table, metadata={"segment_sizes": dg.MetadataValue.json({k: int(v) for k, v in mix.items()})})


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    group_name="features",
    kinds=KINDS,
    owners=OWNERS,
    ins={"rfm_table": dg.AssetIn("rfm")},
    description=(
        "RFM plus average order value, orders per month, tenure, return rate and, where the log has "
        "departments, value and units per department. The clustering input."
    ),
)
def customer_features_basic(cleaned_transactions: pd.DataFrame, rfm_table: pd.DataFrame) -> pd.DataFrame:
    return features.basic_features(cleaned_transactions, rfm_table)


@dg.asset(
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    group_name="features",
    kinds=KINDS,
    owners=OWNERS,
    description=(
        "Basic features plus value per product class, home country and, for synthetic data, the "
        "ground-truth persona and profile (columns `true_*`, never used for clustering)."
    ),
)
def customer_features_enriched(
    cleaned_transactions: pd.DataFrame,
    customer_features_basic: pd.DataFrame,
    ground_truth_customers: pd.DataFrame,
) -> pd.DataFrame:
    truth = ground_truth_customers if len(ground_truth_customers) else None
    return features.enriched_features(cleaned_transactions, customer_features_basic, truth)

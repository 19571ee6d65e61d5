"""Feature stage: RFM with named segments, then the customer tables, computed by the analytical
engine over the cleaned month files (`retail.aggregates`), so the log is never loaded whole."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.metadata import table_metadata
from segmentation_pipeline.orchestration.monthly import MonthlyTable
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings
from segmentation_pipeline.retail import aggregates, features

# What every feature asset shares: computed by the engine from the cleaned month files.
FEATURE_ASSET = {
    "automation_condition": REFRESH_WHEN_UPSTREAM_CHANGES,
    "group_name": "features",
    "kinds": {"duckdb", "pandas", "parquet"},
    "owners": OWNERS,
    "deps": ["cleaned_transactions"],
}


@contextmanager
def cleaned_log(context: dg.AssetExecutionContext, settings: PipelineSettings) -> Iterator[aggregates.CleanedLog]:
    """Every month of the cleaned log now in the data (this run's files, else the published ones)."""
    months = context.instance.get_dynamic_partitions(transaction_months.name)
    files = MonthlyTable(settings, "cleaned_transactions", context.run.run_id).paths(months)
    with aggregates.engine(settings.cache_dir() / layout.ENGINE_SPILL) as connection:
        yield aggregates.CleanedLog(connection, files)


@dg.asset(
    **FEATURE_ASSET,
    name="rfm",
    description=(
        "One row per customer with at least one purchase: recency (days before the day after the last "
        "transaction), frequency (distinct orders), monetary (gross purchases; net of returns in "
        "`monetary_net`), R/F/M quintile scores 1-5 and the named segment from the R x F grid."
    ),
)
def rfm_table(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.Output[pd.DataFrame]:
    with cleaned_log(context, settings) as log:
        table = aggregates.rfm_table(log)
    mix = table["segment"].value_counts().sort_index()
    return dg.Output(table, metadata={"segment_sizes": dg.MetadataValue.json({k: int(v) for k, v in mix.items()})})


@dg.asset(
    **FEATURE_ASSET,
    ins={"rfm_table": dg.AssetIn("rfm")},
    description=(
        "RFM plus average order value, orders per month, tenure, return rate and, where the log has "
        "departments, value and units per department. The clustering input."
    ),
)
def customer_features_basic(
    context: dg.AssetExecutionContext, settings: PipelineSettings, rfm_table: pd.DataFrame
) -> pd.DataFrame:
    with cleaned_log(context, settings) as log:
        return aggregates.basic_features(log, rfm_table)


@dg.asset(
    **FEATURE_ASSET,
    description=(
        "Basic features plus home country, number of distinct products bought and, for synthetic data, "
        "the ground-truth persona and profile (columns `true_*`, never used for clustering)."
    ),
)
def customer_features_enriched(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    customer_features_basic: pd.DataFrame,
    ground_truth_customers: pd.DataFrame,
) -> pd.DataFrame:
    truth = ground_truth_customers if len(ground_truth_customers) else None
    with cleaned_log(context, settings) as log:
        return aggregates.enriched_features(log, customer_features_basic, truth)


@dg.asset(
    **FEATURE_ASSET,
    ins={"rfm_table": dg.AssetIn("rfm")},
    description=(
        "Gross purchase revenue per customer and product class, one row per class a customer bought "
        "(long format: hundreds of classes as columns would multiply the customer table). Personas read "
        "their top classes from it."
    ),
)
def customer_class_spend(
    context: dg.AssetExecutionContext, settings: PipelineSettings, rfm_table: pd.DataFrame
) -> dg.MaterializeResult:
    relative = layout.table("customer_class_spend")
    staging = settings.staging(context.run.run_id)
    with cleaned_log(context, settings) as log:
        rows = aggregates.write_class_spend(log, rfm_table["customer_id"], staging.path(relative))
    staging.record("customer_class_spend", [relative], rows)
    return dg.MaterializeResult(metadata=table_metadata(features.empty_class_spend(), [relative], rows=rows))

"""Ingest stage: the transaction log in force (inbox files, else the configured source), split by month."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.orchestration.conventions import OWNERS
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings, run_date
from segmentation_pipeline.retail.transactions import (
    MONTH_COLUMN,
    ground_truth,
    load_raw,
    log_in_force,
)


@dg.asset(
    group_name="ingest",
    partitions_def=transaction_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    description=(
        "Every row of the transaction log in force, mapped to the canonical columns, one parquet file per "
        "month: the files dropped in the inbox folder when it holds any (all of them, with a `source_file` "
        "column), else the configured file or the embedded synthetic data. Rows without a usable month "
        "(timestamp missing, unreadable, before `transactions.earliest_timestamp` or after the run's date) "
        "create no month: they are kept in the first month, where cleaning rejects and counts them."
    ),
)
def raw_transactions(context: dg.AssetExecutionContext, settings: PipelineSettings) -> pd.DataFrame:
    raw = load_raw(log_in_force(settings.config), settings.cache_dir(), run_date(context))
    table = raw.table
    registered = context.instance.get_dynamic_partitions(transaction_months.name)
    without_month = int(table[MONTH_COLUMN].isna().sum())
    table[MONTH_COLUMN] = table[MONTH_COLUMN].fillna(registered[0])
    outside = int((~table[MONTH_COLUMN].isin(registered)).sum())
    context.add_output_metadata(
        {
            "source": raw.source,
            "source_rows": len(table),
            "rows_without_month": dg.MetadataValue.int(without_month),
            "rows_outside_partitions": dg.MetadataValue.int(outside),
        }
    )
    return table[table[MONTH_COLUMN].isin(context.partition_keys)].reset_index(drop=True)


@dg.asset(
    group_name="ingest",
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    deps=["raw_transactions"],  # after the log is read: a bad input stops the run before anything is written
    description=(
        "Known persona and profile (name, email, city, ...) of each synthetic customer: the ground truth "
        "that clustering is scored against. Empty for real exports (configured file or inbox). Never used "
        "as a clustering feature."
    ),
)
def ground_truth_customers(settings: PipelineSettings) -> pd.DataFrame:
    customers = ground_truth(log_in_force(settings.config), settings.cache_dir())
    if customers is None:
        return pd.DataFrame({"customer_id": pd.Series(dtype="str"), "persona": pd.Series(dtype="str")})
    return customers

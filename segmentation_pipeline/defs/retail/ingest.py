"""Ingest stage: the transaction log in force (inbox files, else the configured source), split by month."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.orchestration.conventions import OWNERS
from segmentation_pipeline.orchestration.monthly import MonthlyTableWriter
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings, run_date
from segmentation_pipeline.retail.transactions import (
    IDENTIFIER_COLUMNS,
    MONTH_COLUMN,
    ground_truth,
    iter_raw,
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
        "create no month: they are kept in the first month, where cleaning rejects and counts them. The log "
        "is read in chunks and written month by month, so its size is not bounded by memory."
    ),
)
def raw_transactions(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    log = log_in_force(settings.config)
    registered = context.instance.get_dynamic_partitions(transaction_months.name)
    source_rows = without_month = outside = 0
    with MonthlyTableWriter(
        settings, "raw_transactions", context.run.run_id, context.partition_keys, MONTH_COLUMN, IDENTIFIER_COLUMNS
    ) as table:
        for chunk in iter_raw(log, settings.cache_dir(), run_date(context)):
            source_rows += len(chunk)
            without_month += int(chunk[MONTH_COLUMN].isna().sum())
            chunk[MONTH_COLUMN] = chunk[MONTH_COLUMN].fillna(registered[0])
            outside += int((~chunk[MONTH_COLUMN].isin(registered)).sum())
            table.write(chunk)
        metadata = table.finish()
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "source": log.label(),
            "source_rows": source_rows,
            "rows_without_month": dg.MetadataValue.int(without_month),
            "rows_outside_partitions": dg.MetadataValue.int(outside),
        }
    )


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

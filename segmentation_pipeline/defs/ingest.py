"""Ingest stage: the transaction log in force (inbox files, else the configured source), split by month."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.defs.partitions import monthly_partitions
from segmentation_pipeline.defs.resources import PipelineSettings, month_of_partition_key
from segmentation_pipeline.retail.transactions import MONTH_COLUMN, RawTransactions, ground_truth, inbox_files, load_raw

OWNERS = ["team:customer-analytics"]


def _log_in_force(settings: PipelineSettings) -> RawTransactions:
    config = settings.load()
    return load_raw(config.transactions, settings.cache_dir(), inbox_files(config.automation.inbox_path()))


@dg.asset(
    group_name="ingest",
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    description=(
        "Every row of the transaction log in force, mapped to the canonical columns, one parquet file per "
        "month: the files dropped in the inbox folder when it holds any (all of them, with a `source_file` "
        "column), else the configured file or the embedded synthetic data. Rows whose timestamp cannot be "
        "parsed are kept in the first month so they are rejected (and counted) by cleaning, never lost."
    ),
)
def raw_transactions(context: dg.AssetExecutionContext, settings: PipelineSettings) -> pd.DataFrame:
    raw = _log_in_force(settings)
    table = raw.table
    first = month_of_partition_key(monthly_partitions.get_first_partition_key())
    table[MONTH_COLUMN] = table[MONTH_COLUMN].fillna(first)
    months = {month_of_partition_key(k) for k in context.partition_keys}
    selected = table[table[MONTH_COLUMN].isin(months)].reset_index(drop=True)
    all_months = [month_of_partition_key(k) for k in monthly_partitions.get_partition_keys()]
    outside = int((~table[MONTH_COLUMN].isin(all_months)).sum())
    context.add_output_metadata(
        {
            "source": raw.source,
            "source_rows": len(table),
            "rows_outside_partitions": dg.MetadataValue.int(outside),
        }
    )
    return selected


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
def ground_truth_customers(context: dg.AssetExecutionContext, settings: PipelineSettings) -> pd.DataFrame:
    config = settings.load()
    customers = ground_truth(config.transactions, settings.cache_dir(), inbox_files(config.automation.inbox_path()))
    if customers is None:
        return pd.DataFrame({"customer_id": pd.Series(dtype="str"), "persona": pd.Series(dtype="str")})
    return customers

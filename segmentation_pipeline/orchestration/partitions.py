"""The months of the transaction log as Dagster partitions, registered from the data, never at load.

`transaction_months` is a dynamic partitions definition: its keys ('YYYY-MM') live in the Dagster
instance, not in the code, so loading the definitions reads no data and a new month (a new export,
a file dropped in the inbox) becomes a partition without reloading the code location. Whoever
prepares a run over the data - the CLI, the schedules, the inbox sensor, the months sensor - finds
the log's months (`retail.transactions.data_months`, cached by content) and calls `month_requests`
or `sync_months`; months that left the data are removed, so no stale month is published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.transactions import data_months, log_in_force

if TYPE_CHECKING:
    from segmentation_pipeline.orchestration.resources import PipelineSettings

transaction_months = dg.DynamicPartitionsDefinition(name="transaction_months")

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


def month_requests(registered: list[str], months: list[str]) -> list[dg.DynamicPartitionsRequest]:
    """Requests that make the registered months exactly `months`, in order.

    Dynamic keys keep the order they were added in, and partition ranges follow that order; a month
    earlier than a registered one therefore re-adds every key sorted (history is kept by key)."""
    wanted = sorted(set(months))
    if registered == wanted:
        return []
    kept = [month for month in registered if month in wanted]
    new = [month for month in wanted if month not in registered]
    appendable = kept == sorted(kept) and (not kept or not new or new[0] > kept[-1])
    removed = [month for month in registered if month not in wanted] if appendable else list(registered)
    added = new if appendable else wanted
    requests: list[dg.DynamicPartitionsRequest] = []
    if removed:
        requests.append(transaction_months.build_delete_request(removed))
    if added:
        requests.append(transaction_months.build_add_request(added))
    return requests


def sensor_month_requests(instance: dg.DagsterInstance, months: list[str]) -> list[dg.DynamicPartitionsRequest]:
    """Requests a sensor can return in its SensorResult. Dagster refuses one that deletes and adds the
    same keys, which re-ordering needs (a month earlier than the registered ones): that change is
    applied to the instance now, and nothing is left to request."""
    requests = month_requests(instance.get_dynamic_partitions(transaction_months.name), months)
    deleted = {key for request in requests if isinstance(request, dg.DeleteDynamicPartitionsRequest)
               for key in request.partition_keys}
    added = {key for request in requests if isinstance(request, dg.AddDynamicPartitionsRequest)
             for key in request.partition_keys}
    if deleted & added:
        sync_months(instance, months)
        return []
    return requests


def sync_months(instance: dg.DagsterInstance, months: list[str]) -> None:
    """Apply `month_requests` to the instance directly (CLI and schedules; sensors return them)."""
    for request in month_requests(instance.get_dynamic_partitions(transaction_months.name), months):
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(transaction_months.name, key)
        else:
            instance.add_dynamic_partitions(transaction_months.name, list(request.partition_keys))


def partition_range_tags(months: list[str]) -> dict[str, str]:
    """Run tags selecting the registered months `months[0]..months[-1]` (one run, many months)."""
    return {PARTITION_RANGE_START: months[0], PARTITION_RANGE_END: months[-1]}


def log_months(settings: PipelineSettings) -> list[str]:
    """The months of the log in force as of now (reads the data, cached by content); InputDataError
    if unreadable. Future and implausible dates make no month."""
    return data_months(log_in_force(settings.config), settings.cache_dir(), pd.Timestamp.now(tz="UTC"))


def register_log_months(instance: dg.DagsterInstance, settings: PipelineSettings) -> list[str] | dg.SkipReason:
    """The log's months, registered as partitions now; a SkipReason naming the problem when the log
    cannot be read, so a schedule tick says why instead of failing."""
    try:
        months = log_months(settings)
    except InputDataError as exc:
        return dg.SkipReason(f"the transaction log cannot be read: {exc}")
    if not months:
        return dg.SkipReason("the transaction log has no month with transactions yet")
    sync_months(instance, months)
    return months

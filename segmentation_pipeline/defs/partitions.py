"""Monthly partitions of the transaction log, over the months the log in force covers.

The window comes from the config (`first_month`, `last_month`) or from the data itself: the files in
the inbox when it holds any, else the configured source. If the data cannot be read while the
definitions load, a one-month placeholder keeps the code location loadable and the run then fails on
`raw_transactions` with the reader's clear message.

`monthly_partitions` is fixed when the definitions load, and Dagster only accepts runs for months
of the loaded window. Schedules and the inbox sensor therefore compare `current_partitions()` with it:
when the data gained months outside it (a file dropped in the inbox, a source that grew), they skip
and ask the webserver at $SEGMENTATION_WEBSERVER_URL (set by `segmentation-pipeline dev`) to reload
the definitions, so their next tick runs with the new window. A fixed window in the config
(`first_month`, and `last_month: open` for a growing feed) never needs a reload.
"""

import logging
import os
import threading

import dagster as dg
import pandas as pd

from segmentation_pipeline.config import OPEN_ENDED, PipelineConfig, active_config
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.transactions import data_months, inbox_files
from tools.ui_snapshot import WEBSERVER_URL_ENV, graphql

logger = logging.getLogger(__name__)

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
RELOAD_LOCATION = """mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }"""
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"


def _month_window(config: PipelineConfig) -> tuple[str, str | None]:
    settings = config.transactions
    first, last = settings.first_month, settings.last_month
    if first is None or last is None:
        inbox = inbox_files(config.automation.inbox_path())
        try:
            data_first, data_last = data_months(settings, config.output_path() / "cache", inbox)
        except (InputDataError, OSError) as exc:
            logger.warning("cannot read the transaction data to find its months: %s", exc)
            data_first = data_last = str(pd.Timestamp.now().to_period("M") - 1)
        first, last = first or data_first, last or data_last
    return first, (None if last == OPEN_ENDED else last)


def current_partitions(config: PipelineConfig | None = None) -> dg.MonthlyPartitionsDefinition:
    """The monthly partitions of the log as it is now (re-read: the inbox may have changed)."""
    first, last = _month_window(config or active_config())
    end = None if last is None else str((pd.Period(last, freq="M") + 1).start_time.date())
    return dg.MonthlyPartitionsDefinition(start_date=f"{first}-01", end_date=end)


def partition_range_tags(keys: list[str]) -> dict[str, str]:
    """Run tags selecting the contiguous partition range `keys[0]..keys[-1]` (one run, many months)."""
    return {PARTITION_RANGE_START: keys[0], PARTITION_RANGE_END: keys[-1]}


def loaded_window_has(keys: list[str]) -> bool:
    """Whether the definitions in this process were loaded with every one of these months."""
    return all(monthly_partitions.has_partition_key(key) for key in keys)


def request_definitions_reload(location: str | None, log: logging.Logger) -> bool:
    """Ask the webserver (if $SEGMENTATION_WEBSERVER_URL is set) to reload the code location, in the
    background: the reload replaces this very process, so the caller returns without waiting."""
    url = os.environ.get(WEBSERVER_URL_ENV)
    if not url:
        return False

    def reload() -> None:
        try:
            names = [location] if location else [
                entry["name"] for entry in graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
            ]
            for name in names:
                graphql(url, RELOAD_LOCATION, {"name": name})
        except Exception as exc:  # the tick already said what to do by hand
            log.warning(f"could not reload the definitions through {url}: {exc}")

    threading.Thread(target=reload, name="reload-definitions", daemon=True).start()
    return True


def stale_window_reason(keys: list[str], location: str | None, log: logging.Logger) -> str | None:
    """None when the loaded definitions cover `keys`; else why the tick skips (and a reload is requested)."""
    if loaded_window_has(keys):
        return None
    loaded = monthly_partitions.get_partition_keys()
    reloading = request_definitions_reload(location, log)
    return (
        f"the data now covers {keys[0][:7]}..{keys[-1][:7]} but the definitions were loaded for "
        f"{loaded[0][:7]}..{loaded[-1][:7]}: "
        + ("reloading them, the next tick starts the run" if reloading else
           "reload them (UI: Deployment > Reload, or restart dagster dev), the next tick then starts the run")
    )


monthly_partitions = current_partitions()

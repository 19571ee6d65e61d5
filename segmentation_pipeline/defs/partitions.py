"""Monthly partitions of the transaction log, over the months the data covers.

The window comes from the config (`first_month`, `last_month`) or from the data itself. If the source
cannot be read while the definitions load, a one-month placeholder keeps the code location loadable
and the run then fails on `raw_transactions` with the reader's clear message.
"""

import logging

import dagster as dg
import pandas as pd

from segmentation_pipeline.config import OPEN_ENDED, active_config
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.transactions import data_months

logger = logging.getLogger(__name__)


def _month_window() -> tuple[str, str | None]:
    settings = active_config().transactions
    first, last = settings.first_month, settings.last_month
    if first is None or last is None:
        try:
            data_first, data_last = data_months(settings, active_config().output_path() / "cache")
        except (InputDataError, OSError) as exc:
            logger.warning("cannot read the transaction source to find its months: %s", exc)
            data_first = data_last = str(pd.Timestamp.now().to_period("M") - 1)
        first, last = first or data_first, last or data_last
    return first, (None if last == OPEN_ENDED else last)


def _monthly_partitions() -> dg.MonthlyPartitionsDefinition:
    first, last = _month_window()
    end = None if last is None else str((pd.Period(last, freq="M") + 1).start_time.date())
    return dg.MonthlyPartitionsDefinition(start_date=f"{first}-01", end_date=end)


monthly_partitions = _monthly_partitions()

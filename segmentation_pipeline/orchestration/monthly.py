"""Monthly transaction tables (`raw_transactions`, `cleaned_transactions`, `rejected_transactions`) as
month files that steps write and read themselves, one month or one chunk at a time.

A log of a hundred million lines does not fit in memory as one DataFrame, so these assets do not hand
their table to an IO manager: a step streams its rows into one parquet file per month in the run's
staging folder (recorded in the ledger like every other output), and the next step reads the months
back one at a time, or lets the analytical engine scan them (`retail.aggregates`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from segmentation_pipeline import layout
from segmentation_pipeline.orchestration.metadata import table_metadata
from segmentation_pipeline.orchestration.resources import PipelineSettings
from segmentation_pipeline.storage import (
    PartitionedParquetWriter,
    parquet_rows,
    read_parquet,
)


class MonthlyTable:
    """One monthly table as a run sees it: the months this run wrote, else the published ones."""

    def __init__(self, settings: PipelineSettings, name: str, run_id: str | None):
        self.settings, self.name, self.run_id = settings, name, run_id

    def path(self, month: str) -> Path:
        return self.settings.locate(layout.month_table(self.name, month), self.run_id)

    def paths(self, months: list[str]) -> list[Path]:
        return [self.path(month) for month in months]

    def read(self, month: str, columns: list[str] | None = None) -> pd.DataFrame:
        return read_parquet(self.path(month), columns)

    def columns(self, month: str) -> list[str]:
        """The table's column names, from one month file's schema."""
        return pq.read_schema(self.path(month)).names

    def months(self, months: list[str], columns: list[str] | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
        """(month, its rows) for each month in turn: one month in memory at a time."""
        for month in months:
            yield month, self.read(month, columns)

    def rows_per_month(self, months: list[str]) -> dict[str, int]:
        """Rows of each month from the files' footers, without reading the data."""
        return {month: parquet_rows(self.path(month)) for month in months}


class MonthlyTableWriter:
    """Rows of one monthly table streamed into the run's staging, one file per month of the run.

    `write` takes any chunk of rows (each with its month in `month_column`) and appends each month's
    rows to that month's file; `plain_text` columns are stored as plain strings
    (`PartitionedParquetWriter`). `finish` writes an empty file for every month of the run without rows
    (so a month that lost all its rows is replaced, not left stale), records every file in the ledger
    and returns the standard metadata. A step that fails leaves no file behind.
    """

    def __init__(
        self,
        settings: PipelineSettings,
        name: str,
        run_id: str,
        months: list[str],
        month_column: str,
        plain_text: tuple[str, ...] = (),
    ):
        self.name, self.months, self.month_column = name, list(months), month_column
        self.staging = settings.staging(run_id)
        self._writer = PartitionedParquetWriter(lambda month: self.staging.path(layout.month_table(name, month)), plain_text)
        self._empty: pd.DataFrame | None = None

    def write(self, chunk: pd.DataFrame) -> None:
        if self._empty is None:
            self._empty = chunk.iloc[0:0]
        wanted = chunk[self.month_column].isin(self.months)
        for month, rows in chunk[wanted].groupby(self.month_column, sort=False, observed=True):
            self._writer.write(str(month), rows)

    def write_month(self, month: str, rows: pd.DataFrame) -> None:
        """All of one month's rows at once (a step that works month by month)."""
        if self._empty is None:
            self._empty = rows.iloc[0:0]
        self._writer.write(month, rows)

    def finish(self) -> dict:
        if self._empty is None:
            raise ValueError(f"{self.name}: no rows and no schema were written")
        for month in self.months:
            if month not in self._writer.rows:
                self._writer.write(month, self._empty)
        rows = self._writer.close()
        files = []
        for month in self.months:
            relative = layout.month_table(self.name, month)
            self.staging.record(self.name, [relative], rows[month], partition=month)
            files.append(relative)
        metadata = table_metadata(self._empty, files, rows=sum(rows[m] for m in self.months))
        metadata["rows_per_month"] = dg.MetadataValue.json({month: rows[month] for month in self.months})
        return metadata

    def abort(self) -> None:
        self._writer.abort()

    def __enter__(self) -> MonthlyTableWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()

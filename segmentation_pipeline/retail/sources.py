"""Map a transaction file's columns to the canonical raw transaction table.

Cells that cannot be parsed are kept (as NaN/NaT) and described in `parse_errors`, so cleaning can
reject and count them; only problems with the column as a whole (missing columns, wrong column types)
raise `InputDataError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from segmentation_pipeline.cells import (
    MAX_UNPARSEABLE_SHARE,
    DayMonthOrders,
    as_text,
    clean_text,
    id_text,
    parse_numbers,
    parse_timestamps,
)
from segmentation_pipeline.config import CANONICAL_COLUMNS
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.readers import parquet_safe

ID_COLUMNS = ("customer_id", "invoice_id", "product_id")
# Text columns are categorical with sorted categories (so code order is name order), except these, whose
# many distinct values would make sorting cost more than it saves.
UNSORTED_TEXT_COLUMNS = ("invoice_id",)
NUMERIC_COLUMNS = ("quantity", "unit_price", "amount")
REQUIRED_COLUMNS = ("customer_id", "timestamp")
# Names this module and cleaning give columns: an unmapped file column so named is kept as `file:<name>`,
# so that, say, an unmapped 'amount' cannot pass for the real one.
RESERVED_COLUMNS = frozenset(CANONICAL_COLUMNS) | {"source_row", "parse_errors", "is_return", "reject_reason"}
MIN_CUSTOMERS = 2


# ------------------------------------------------------------------------------------------- mapping


def map_columns(
    df: pd.DataFrame,
    columns: Mapping[str, str | None],
    timestamp_format: str | None,
    source: str,
) -> pd.DataFrame:
    """The canonical raw table: `source_row`, typed canonical columns, `parse_errors`, unmapped columns.

    `columns` maps canonical names to the file's column names (None = not in the file). Every input
    row is kept; cells that cannot be parsed become NaN/NaT and are listed in that row's `parse_errors`.
    An unmapped column named like a canonical column is kept as `file:<name>`.
    """
    mapping = ChunkedMapping(columns, timestamp_format, source)
    table = mapping.map(df)
    mapping.finish()
    return table


class ChunkedMapping:
    """`map_columns` for a file read in consecutive chunks: each chunk is mapped as it comes, and the
    checks about the file as a whole (no data rows, a required column without any value, fewer than
    two customers) run in `finish`, over every chunk. `source_row` counts rows across chunks, and the
    day/month order of dates carries from chunk to chunk (`cells.DayMonthOrders`)."""

    def __init__(self, columns: Mapping[str, str | None], timestamp_format: str | None, source: str):
        self.columns, self.timestamp_format, self.source = dict(columns), timestamp_format, source
        self.rows = 0
        self._mapping: dict[str, str] | None = None
        self._filled: set[str] = set()  # canonical columns with at least one value so far
        self._customers: list[str] = []  # up to MIN_CUSTOMERS distinct ids seen so far
        self._orders = DayMonthOrders()

    def map(self, df: pd.DataFrame) -> pd.DataFrame:
        mapping = self._mapping = _checked_mapping(df, self.columns, self.source)
        if len(df) == 0:
            raise InputDataError(f"'{self.source}' has no data rows.")
        index = pd.RangeIndex(len(df))
        rows = np.arange(self.rows, self.rows + len(df), dtype=np.int64)
        parsed: dict[str, pd.Series] = {"source_row": pd.Series(rows, index=index)}
        unparseable: list[tuple[str, pd.Series, np.ndarray]] = []
        for canonical, file_column in mapping.items():
            values = df[file_column].reset_index(drop=True)
            described = f"Column '{file_column}' (mapped to {canonical}) in '{self.source}'"
            if canonical in NUMERIC_COLUMNS:
                result, bad = parse_numbers(values)
                _require_mostly_parsed(values, result, bad, described, "numbers")
            elif canonical == "timestamp":
                result, bad = parse_timestamps(values, self.timestamp_format, described, self._orders)
                _require_mostly_parsed(values, result, bad, described, "dates and times")
            else:
                sort = canonical not in UNSORTED_TEXT_COLUMNS
                result, bad = (id_text(values, sort) if canonical in ID_COLUMNS else clean_text(values, sort)), None
            parsed[canonical] = result
            if bad is not None and bad.any():
                unparseable.append((canonical, values, bad))
        self.rows += len(df)
        self._filled.update(name for name, values in parsed.items() if values.notna().any())
        if len(self._customers) < MIN_CUSTOMERS:
            distinct = parsed["customer_id"].dropna().unique()[:MIN_CUSTOMERS]
            self._customers = list(dict.fromkeys([*self._customers, *map(str, distinct)]))[:MIN_CUSTOMERS]
        parsed["parse_errors"] = _describe_parse_errors(unparseable, len(df))
        raw = pd.DataFrame(parsed, index=index)

        used = set(mapping.values())
        kept = parquet_safe(df[[c for c in df.columns if c not in used]].reset_index(drop=True))
        kept = kept.rename(columns=lambda name: f"file:{name}" if name in RESERVED_COLUMNS else name)
        return pd.concat([raw, kept], axis=1)

    def finish(self) -> None:
        """Checks about the whole file, once every chunk is mapped."""
        if self.rows == 0 or self._mapping is None:
            raise InputDataError(f"'{self.source}' has no data rows.")
        mapping = self._mapping
        revenue = ("quantity", "unit_price") if {"quantity", "unit_price"} <= mapping.keys() else ("amount",)
        for canonical in REQUIRED_COLUMNS + revenue:
            if canonical not in self._filled:
                raise InputDataError(
                    f"Column '{mapping[canonical]}' (mapped to {canonical}) in '{self.source}' is empty: "
                    f"none of its {self.rows:,} cells has a value."
                )
        if len(self._customers) < MIN_CUSTOMERS:
            example = f" ({self._customers[0]!r})" if self._customers else ""
            raise InputDataError(
                f"Column '{mapping['customer_id']}' (mapped to customer_id) in '{self.source}' has "
                f"{len(self._customers)} distinct customer{example}; segmentation needs at least {MIN_CUSTOMERS} customers."
            )


def _checked_mapping(df: pd.DataFrame, columns: Mapping[str, str | None], source: str) -> dict[str, str]:
    """Canonical name -> file column, in canonical order; raises on unknown, missing or absent columns."""
    unknown = sorted(set(columns) - set(CANONICAL_COLUMNS))
    if unknown:
        raise InputDataError(
            f"Column mapping for '{source}' names unknown canonical columns {', '.join(unknown)}; "
            f"known: {', '.join(CANONICAL_COLUMNS)}."
        )
    by_name = {str(name): name for name in df.columns}
    mapping = {c: by_name.get(str(columns[c]), columns[c]) for c in CANONICAL_COLUMNS if columns.get(c) is not None}
    for canonical in REQUIRED_COLUMNS:
        if canonical not in mapping:
            raise InputDataError(f"No column of '{source}' is mapped to {canonical}, which is required.")
    if "amount" not in mapping and not {"quantity", "unit_price"} <= mapping.keys():
        raise InputDataError(
            f"No column of '{source}' is mapped to amount, nor to both quantity and unit_price; "
            "line revenue needs one of them."
        )
    missing = [(c, f) for c, f in mapping.items() if f not in df.columns]
    if missing:
        available = [str(name) for name in df.columns]
        described = ", ".join(f"'{f}' (mapped to {c})" for c, f in missing)
        hints = [hint for _, f in missing if (hint := _closest(str(f), available))]
        did_you_mean = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise InputDataError(
            f"Column {described} is not in '{source}'{did_you_mean}; "
            f"its columns are: {', '.join(available) or '(none)'}."
        )
    return mapping


def _closest(name: str, available: list[str]) -> str | None:
    lowered = [a.lower() for a in available]
    close = difflib.get_close_matches(name.lower(), lowered, n=1, cutoff=0.75)
    return f"'{available[lowered.index(close[0])]}'" if close else None


def _require_mostly_parsed(values: pd.Series, result: pd.Series, bad: np.ndarray, described: str, kind: str) -> None:
    """Some bad cells are dirt that cleaning rejects; a column where most cells fail is mapped wrongly."""
    unparsed = int(bad.sum())
    non_empty = unparsed + int(result.notna().sum())
    if unparsed and unparsed > MAX_UNPARSEABLE_SHARE * non_empty:
        examples = ", ".join(f"'{v}'" for v in as_text(values[bad]).drop_duplicates().head(3))
        raise InputDataError(
            f"{described} does not hold {kind}: {unparsed:,} of its {non_empty:,} non-empty cells "
            f"cannot be read as {kind}, e.g. {examples}."
        )


def _describe_parse_errors(unparseable: list[tuple[str, pd.Series, np.ndarray]], rows: int) -> pd.Series:
    """"timestamp='2011-13-45'; quantity='abc'" per row, built only over the (few) rows with bad cells."""
    if not unparseable:  # the usual case: an all-missing column, without a Python object per row
        return pd.Series(pd.array(pa.nulls(rows, pa.large_string()), dtype="str"))
    messages = np.full(rows, np.nan, dtype=object)
    for canonical, values, bad in unparseable:
        positions = np.flatnonzero(bad)
        cells = as_text(values.iloc[positions]).str.slice(0, 60).to_numpy(dtype=object)
        described = f"{canonical}='" + cells + "'"
        current = messages[positions]
        first = pd.isna(current)
        messages[positions] = np.where(first, described, current.astype(str) + "; " + described)
    return pd.Series(messages, dtype="str")


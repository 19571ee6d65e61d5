"""Parse the cells of one column: numbers with any decoration, dates in several conventions, text and
identifiers as categoricals.

Cells that cannot be parsed become NaN/NaT and are reported as a mask, so the caller can keep the row
and say why; each distinct cell is parsed once, since exports repeat the same values on many rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from segmentation_pipeline.errors import InputDataError

MAX_UNPARSEABLE_SHARE = 0.5  # above this share of non-empty cells, the column is the wrong type, not dirty
TIMESTAMP_SAMPLE_SIZE = 2000

CURRENCY = "£$€¥"
_MIN_TIMESTAMP = pd.Timestamp.min.as_unit("us")
_MAX_TIMESTAMP = pd.Timestamp.max.as_unit("us")

# Date conventions tried on a sample; the one that parses the most values is used for the whole column.
# Month-first comes before day-first, so a column where every day is <= 12 reads as month-first.
_TIMES = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p")


def _with_times(*dates: str) -> tuple[str, ...]:
    return tuple(f"{d} {t}" for d in dates for t in _TIMES) + dates


TIMESTAMP_CONVENTIONS: dict[str, tuple[str, ...]] = {
    "ISO 8601": ("ISO8601",),
    "month/day/year": _with_times("%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y"),
    "day/month/year": _with_times("%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y", "%d.%m.%y", "%d-%m-%Y"),
    "year/month/day": _with_times("%Y/%m/%d", "%Y.%m.%d"),
}



# ------------------------------------------------------------------------------------- cell parsing


def as_text(values: pd.Series) -> pd.Series:
    """Any column as text, missing cells kept missing; whole numbers without '.0' (17850.0 -> '17850')."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return values.astype("str")
    text = pa.array(values, from_pandas=True).cast(pa.string())  # Arrow prints 17850.0 as "17850"
    return pd.Series(pd.array(text, dtype="str"), index=values.index)


def _distinct(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes (-1 for missing) and distinct values: exports repeat the same ids, prices and dates, so
    each distinct cell is parsed once and the result spread back with `_spread`."""
    codes, distinct = pd.factorize(values)
    return codes, pd.Series(distinct)


def _spread(per_distinct: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.api.extensions.take(per_distinct.array, codes, allow_fill=True), index=index)


def _spread_flags(per_distinct: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.append(per_distinct, False)[codes]  # code -1 (a missing cell) picks the appended False


def _stripped(values: pd.Series) -> pd.Series:
    text = as_text(values).str.strip()
    return text.mask(text == "")


def _as_categorical(per_distinct: pd.Series, codes: np.ndarray, index: pd.Index, sort: bool) -> pd.Series:
    """Rows' texts as a categorical: the few distinct values once, plus one small integer code per row.

    Every mapped text column is categorical: logs repeat the same ids and names on millions of rows,
    so a code per row replaces a string per row, and cleaning, RFM and features work on the codes.

    Cleaning may turn different cells into the same text (' 17850', '17850.0') or into missing, so the
    cleaned distinct texts are coded again; the rows' codes are then one integer lookup.
    """
    text_codes, categories = pd.factorize(per_distinct, sort=sort)
    row_codes = np.append(text_codes, -1)[codes]  # code -1 (a missing cell) picks the appended -1
    categorical = pd.Categorical.from_codes(row_codes, dtype=pd.CategoricalDtype(pd.Index(categories, dtype="str")))
    return pd.Series(categorical, index=index)


def clean_text(values: pd.Series, sort: bool) -> pd.Series:
    """Text with surrounding blanks removed; blank cells become missing."""
    codes, distinct = _distinct(values)
    return _as_categorical(_stripped(distinct), codes, values.index, sort)


def id_text(values: pd.Series, sort: bool) -> pd.Series:
    """Identifiers as text, '17850.0' (a whole number stored as a float, then exported) as '17850'."""
    codes, distinct = _distinct(values)
    text = _stripped(distinct).str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return _as_categorical(text, codes, values.index, sort)


def parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Float64 values and the mask of non-empty cells that are not numbers.

    Text is read with thousands separators, spaces, apostrophes and a currency sign. A comma is taken
    as the decimal mark only when the column shows it unambiguously ('2,55' or '1.234,5') and no value
    uses a decimal point ('12.50'); '1,234' alone reads as one thousand two hundred and thirty-four.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(np.nan, index=values.index), values.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64), np.zeros(len(values), dtype=bool)
    codes, distinct = _distinct(values)
    result, bad = _text_numbers(distinct)
    return _spread(result, codes, values.index), _spread_flags(bad, codes)


def _text_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    result = pd.to_numeric(values, errors="coerce").astype(np.float64)  # plain numbers
    text = _stripped(values)
    needs_rules = text.notna() & result.isna()
    decimal_comma = bool(needs_rules.any()) and _uses_decimal_comma(text)
    if decimal_comma:
        needs_rules |= text.str.contains(".", regex=False, na=False)
    if needs_rules.any():
        result = result.mask(needs_rules, _numbers_with_separators(text[needs_rules], decimal_comma))
    bad = text.notna() & ~np.isfinite(result)
    return result.mask(bad), bad.to_numpy()


def _uses_decimal_comma(text: pd.Series) -> bool:
    compact = _strip_number_decoration(text.dropna())
    comma_decimal = compact.str.contains(r",\d{1,2}$|,\d{4,}$|\.\d*,\d*$", regex=True)
    point_decimal = compact.str.contains(r"\.\d{1,2}$|\.\d{4,}$|,\d*\.\d*$", regex=True)
    return bool(comma_decimal.any()) and not bool(point_decimal.any())


def _strip_number_decoration(text: pd.Series) -> pd.Series:
    text = text.str.replace(r"[\s\u00a0\u202f'’]", "", regex=True)
    return text.str.replace(rf"^([-+]?)[{CURRENCY}]|[{CURRENCY}]$", r"\1", regex=True)


def _numbers_with_separators(text: pd.Series, decimal_comma: bool) -> pd.Series:
    thousands, decimal = (r"\.", ",") if decimal_comma else (",", r"\.")
    compact = _strip_number_decoration(text)
    grouped = compact.str.contains(thousands, regex=True)
    well_grouped = compact.str.fullmatch(rf"[-+]?\d{{1,3}}({thousands}\d{{3}})+({decimal}\d*)?")
    plain = compact.str.replace(thousands, "", regex=True).str.replace(decimal, ".", regex=True)
    numbers = pd.to_numeric(plain, errors="coerce").astype(np.float64)
    return numbers.mask(grouped & ~well_grouped)


def parse_timestamps(values: pd.Series, timestamp_format: str | None, described: str) -> tuple[pd.Series, np.ndarray]:
    """datetime64[ns] values (naive; time-zoned values are converted to UTC) and the unparseable mask.

    Without a format: datetime cells are used as they are, numbers are read as Excel serial days,
    YYYYMMDD or Unix epochs by their magnitude, and text by the convention that parses the most of a
    sample (ISO 8601, month/day/year, day/month/year, year/month/day), then by dateutil as a last resort.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        result, present = _naive(values), values.notna()
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and timestamp_format is None:
        result, present = _numbers_as_timestamps(values.astype(np.float64)), values.notna()
    else:
        codes, distinct = _distinct(values)
        text = _stripped(distinct)
        if timestamp_format is None:
            parsed = _text_as_timestamps(text)
        else:
            try:
                parsed = _naive(pd.to_datetime(text, format=timestamp_format, errors="coerce", utc=True))
            except ValueError as exc:
                raise InputDataError(f"{described}: timestamp format '{timestamp_format}' is invalid: {exc}") from None
        result = _spread(parsed, codes, values.index)
        present = pd.Series(_spread_flags(text.notna().to_numpy(), codes), index=values.index)
    in_range = result.isna() | ((result >= _MIN_TIMESTAMP) & (result <= _MAX_TIMESTAMP))
    result = result.where(in_range).astype("datetime64[ns]")
    return result, (present & result.isna()).to_numpy()


def _naive(values: pd.Series) -> pd.Series:
    values = pd.Series(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]")


def _numbers_as_timestamps(numbers: pd.Series) -> pd.Series:
    magnitude = float(np.nanmedian(np.abs(numbers))) if numbers.notna().any() else 0.0
    if 1e4 <= magnitude < 1e5:  # Excel serial days: 1927 .. 2173
        days = pd.to_datetime(numbers, unit="D", origin=pd.Timestamp("1899-12-30"), errors="coerce")
        return _naive(days.dt.round("ms"))
    if 1.9e7 <= magnitude < 2.2e7:  # 20101201
        whole = numbers.where(numbers == np.round(numbers))
        return _naive(pd.to_datetime(as_text(whole), format="%Y%m%d", errors="coerce"))
    for unit, low in (("s", 1e8), ("ms", 1e11), ("us", 1e14), ("ns", 1e17)):
        if low <= magnitude < low * 100:
            return _naive(pd.to_datetime(numbers, unit=unit, errors="coerce"))
    return pd.Series(pd.NaT, index=numbers.index, dtype="datetime64[us]")


def _text_as_timestamps(text: pd.Series) -> pd.Series:
    """Distinct cleaned texts as timestamps, by the convention that parses the most of a sample."""
    sample = text.dropna().head(TIMESTAMP_SAMPLE_SIZE)
    if sample.empty:
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    if pd.to_numeric(sample, errors="coerce").notna().mean() > MAX_UNPARSEABLE_SHARE:
        return _numbers_as_timestamps(pd.to_numeric(text, errors="coerce"))
    parsed_counts = {name: _parse_with(sample, fmts).notna().sum() for name, fmts in TIMESTAMP_CONVENTIONS.items()}
    best = max(parsed_counts, key=parsed_counts.get)  # first convention wins ties
    if parsed_counts[best] == 0:
        return _parse_with(text, ("mixed",))
    return _parse_with(text, TIMESTAMP_CONVENTIONS[best])


def _parse_with(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Try each format in turn on the cells still unparsed (times with or without seconds, 2-digit years)."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    todo = text.notna()
    for fmt in formats:
        if not todo.any():
            break
        positions = np.flatnonzero(todo.to_numpy())
        attempt = _naive(pd.to_datetime(text.iloc[positions], format=fmt, errors="coerce", utc=True))
        result.iloc[positions] = attempt.to_numpy()
        todo &= result.isna()
    return result


# ---------------------------------------------------------------------------------------- months


def month_of(timestamps: pd.Series | pd.DatetimeIndex | np.ndarray) -> pd.Series:
    """'YYYY-MM' label of each timestamp; NaT belongs to no month (missing label)."""
    stamps = pd.Series(pd.to_datetime(timestamps))
    months = (stamps.dt.year * 12 + stamps.dt.month - 1).fillna(-1).to_numpy(np.int64)
    codes, distinct = pd.factorize(months)  # label each distinct month once
    labels = np.array([f"{m // 12:04d}-{m % 12 + 1:02d}" if m >= 0 else np.nan for m in distinct], dtype=object)
    return pd.Series(labels[codes], index=stamps.index, dtype="str")


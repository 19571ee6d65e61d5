"""Parse the cells of one column: numbers with any decoration, dates in several conventions, text and
identifiers as categoricals.

Cells that cannot be parsed become NaN/NaT and are reported as a mask, so the caller can keep the row
and say why; each distinct cell is parsed once, since exports repeat the same values on many rows.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa

from segmentation_pipeline.errors import InputDataError

MAX_UNPARSEABLE_SHARE = 0.5  # above this share of non-empty cells, the column is the wrong type, not dirty
TIMESTAMP_SAMPLE_SIZE = 2000

CURRENCY = "£$€¥"
_MIN_TIMESTAMP = pd.Timestamp.min.as_unit("us")
_MAX_TIMESTAMP = pd.Timestamp.max.as_unit("us")

# Shapes of date text. A column may mix them (one system writes ISO, another '03/01/2025 12:30',
# a third '3 Jan 2025'), so each distinct cell is parsed by the shape it has, not by one format per column.
_TIMES = ("%H:%M", "%H:%M:%S", "%H:%M:%S.%f", "%I:%M %p", "%I:%M:%S %p")
_ISO_SHAPE = r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d.*)?"  # 2025-01-03, 2025-01-03T12:30:00+01:00
_YEAR_FIRST_SHAPE = r"\d{4}([/.])\d{1,2}\1\d{1,2}(?:\s.*)?"  # 2025/01/03, 2025.01.03 12:30
# 03/01/2025, 3.1.25 12:30, 01-03-2025: day-first or month-first, decided from the unambiguous cells.
_DAY_MONTH_SHAPE = r"(?P<first>\d{1,2})(?P<sep>[/.-])(?P<second>\d{1,2})(?P=sep)(?:\d{4}|\d{2})(?:\s.*)?"
_MONTH_NAME = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?![a-z])"
DAY_FIRST, MONTH_FIRST = "day-first", "month-first"


def _with_times(*dates: str) -> tuple[str, ...]:
    return tuple(f"{d} {t}" for d in dates for t in _TIMES) + dates


_YEAR_FIRST_FORMATS = _with_times("%Y/%m/%d", "%Y.%m.%d")
_MONTH_NAME_FORMATS = _with_times(
    "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%d %b %y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y"
)


def _day_month_formats(order: str, separator: str) -> tuple[str, ...]:
    day_month = ("%d", "%m") if order == DAY_FIRST else ("%m", "%d")
    dates = [separator.join((*day_month, year)) for year in ("%Y", "%y")]
    return _with_times(*dates)


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


class DayMonthOrders:
    """The reading order of numeric day/month dates per separator, kept across the chunks of one file.

    A chunk may hold only ambiguous dates ('03/04/2025') although the file as a whole shows its order:
    later chunks read such dates in the order earlier chunks established. A chunk whose unambiguous
    dates contradict an order already used (by evidence or by the default) would give one file two
    readings, so it is an error that asks for `transactions.timestamp_format`.
    """

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str | None, bool]] = {}  # separator -> (order, decided by evidence)

    def reconcile(self, orders: dict, evidenced: set, described: str) -> dict:
        """This chunk's orders made consistent with the earlier chunks' (see the class docstring)."""
        result = {}
        for separator, order in orders.items():
            known = self._orders.get(separator)
            if known is None:
                self._orders[separator] = (order, separator in evidenced)
                result[separator] = order
            elif separator not in evidenced:
                result[separator] = known[0]
            elif order != known[0]:
                earlier = "shown by earlier dates" if known[1] else "assumed for earlier, ambiguous dates"
                raise InputDataError(
                    f"{described}: dates written with '{separator}' read {known[0] or 'in mixed orders'} "
                    f"({earlier}) but later rows need {order or 'mixed orders'}; set transactions.timestamp_format."
                )
            else:
                self._orders[separator] = (order, True)
                result[separator] = order
        return result


def parse_timestamps(
    values: pd.Series, timestamp_format: str | None, described: str, orders: DayMonthOrders | None = None
) -> tuple[pd.Series, np.ndarray]:
    """datetime64[ns] values (naive; time-zoned values are converted to UTC) and the unparseable mask.

    Without a format: datetime cells are used as they are, numbers are read as Excel serial days,
    YYYYMMDD or Unix epochs by their magnitude, and text cell by cell by its shape (see
    `_text_as_timestamps`), so a column mixing ISO, '03/01/2025 12:30' and '3 Jan 2025' loses no row.
    The mask marks exactly the non-empty cells that did not parse. `orders` carries the day/month
    reading order from chunk to chunk of one file.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        result, present = _naive(values), values.notna()
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and timestamp_format is None:
        result, present = _numbers_as_timestamps(values.astype(np.float64)), values.notna()
    else:
        codes, distinct = _distinct(values)
        text = _stripped(distinct)
        if timestamp_format is None:
            parsed = _text_as_timestamps(text, orders, described)
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


def _text_as_timestamps(text: pd.Series, orders: DayMonthOrders | None = None, described: str = "") -> pd.Series:
    """Distinct cleaned texts as timestamps, each by its own shape.

    - ISO 8601 ('2025-01-03', '2025-01-03T12:30:00+01:00') and year-first ('2025/01/03', '2025.01.03');
    - day and month as numbers ('03/01/2025', '3.1.25 12:30'): the order is decided per separator from the
      unambiguous cells (a first number above 12 is a day, a second one above 12 is a day): see
      `_day_month_orders`; each cell is then read in that order;
    - month names ('3 Jan 2025', 'Jan 3, 2025 2:05 PM', '03-Jan-25'; English names), with dateutil as a
      last resort for month-name cells that also carry a four-digit year;
    - a column mostly of numbers written as text: as numbers (`_numbers_as_timestamps`).
    Cells that fit no shape, or do not parse in their shape, stay NaT.
    """
    sample = text.dropna().head(TIMESTAMP_SAMPLE_SIZE)
    if not sample.empty and pd.to_numeric(sample, errors="coerce").notna().mean() > MAX_UNPARSEABLE_SHARE:
        return _numbers_as_timestamps(pd.to_numeric(text, errors="coerce"))
    result = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[us]")
    remaining = text.dropna().reset_index(drop=True)
    positions = np.flatnonzero(text.notna().to_numpy())
    # Each shape takes the cells it matches out of the remaining ones, so a column of one shape pays
    # for one match (the usual case), and no cell is parsed twice.
    day_month = functools.partial(_day_month_timestamps, orders=orders, described=described)
    for shape in (_iso_timestamps, _year_first_timestamps, day_month, _month_name_timestamps):
        if remaining.empty:
            break
        matched, values = shape(remaining)
        result[positions[matched]] = values.to_numpy(dtype="datetime64[us]")
        remaining, positions = remaining[~matched].reset_index(drop=True), positions[~matched]
    return pd.Series(result, index=text.index)


def _iso_timestamps(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """ISO 8601 cells: (which cells have the shape, their timestamps), like every shape reader below."""
    matched = text.str.fullmatch(_ISO_SHAPE).to_numpy(dtype=bool)
    return matched, _parse_with(text[matched], ("ISO8601",))


def _year_first_timestamps(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    matched = text.str.fullmatch(_YEAR_FIRST_SHAPE).to_numpy(dtype=bool)
    return matched, _parse_with(text[matched], _YEAR_FIRST_FORMATS)


def _day_month_orders(separators: pd.Series, day_first_only: pd.Series, month_first_only: pd.Series) -> dict:
    """Reading order of numeric day/month cells, per separator: DAY_FIRST, MONTH_FIRST or None.

    A separator whose cells include unambiguous ones of only one order ('13/01/2025' is day-first,
    '01/13/2025' month-first) reads all its cells in that order. Without unambiguous cells it follows
    the other separators when they agree on one order, else dots read day-first (no convention writes
    month.day.year) and slashes and dashes month-first (so '12/01/2025' alone is December 1st).
    Unambiguous cells of both orders mean the column really mixes them: None, and its ambiguous cells
    ('03/04/2025') cannot be read and stay NaT, rather than be guessed.
    """

    def decided(day_first: bool, month_first: bool) -> str | None:
        return DAY_FIRST if day_first and not month_first else MONTH_FIRST if month_first and not day_first else None

    column_order = decided(bool(day_first_only.any()), bool(month_first_only.any()))
    orders = {}
    for separator in separators.unique():
        rows = separators == separator
        day_first, month_first = bool(day_first_only[rows].any()), bool(month_first_only[rows].any())
        if day_first or month_first:
            orders[separator] = decided(day_first, month_first)
        else:
            orders[separator] = column_order or (DAY_FIRST if separator == "." else MONTH_FIRST)
    return orders


def _day_month_timestamps(
    text: pd.Series, orders: DayMonthOrders | None = None, described: str = ""
) -> tuple[np.ndarray, pd.Series]:
    """Cells like '03/01/2025 12:30', read in their separator's order (see `_day_month_orders`), made
    consistent with earlier chunks of the file by `orders`."""
    parts = text.str.extract(f"^{_DAY_MONTH_SHAPE}$")
    matched = parts["sep"].notna().to_numpy()
    text, parts = text[matched], parts[matched]
    first, second = parts["first"].astype(np.int64), parts["second"].astype(np.int64)
    day_first_only = (first > 12) & (second <= 12)
    month_first_only = (second > 12) & (first <= 12)
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    decided = _day_month_orders(parts["sep"], day_first_only, month_first_only)
    if orders is not None:
        evidenced = set(parts["sep"][day_first_only | month_first_only].unique())
        decided = orders.reconcile(decided, evidenced, described)
    for separator, order in decided.items():
        rows = parts["sep"] == separator
        if order is not None:
            result[rows] = _parse_with(text[rows], _day_month_formats(order, separator))
            continue
        # Mixed orders: each unambiguous cell in its only possible order; '03/03/2025' reads the same
        # either way; the other ambiguous cells stay NaT.
        readable = ((day_first_only | (first == second), DAY_FIRST), (month_first_only, MONTH_FIRST))
        for order_rows, cell_order in readable:
            chosen = rows & order_rows
            if chosen.any():
                result[chosen] = _parse_with(text[chosen], _day_month_formats(cell_order, separator))
    return matched, result


def _month_name_timestamps(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Cells with an English month name; dateutil reads what the usual formats miss, but only cells
    with a four-digit year, since it would fill a missing year with the current one."""
    matched = text.str.contains(_MONTH_NAME, regex=True).to_numpy(dtype=bool)
    text = text[matched].str.replace(r"(?<=[A-Za-z])\.", "", regex=True)  # 'Jan.' -> 'Jan'
    result = _parse_with(text, _MONTH_NAME_FORMATS)
    leftover = result.isna() & text.str.contains(r"\b\d{4}\b", regex=True, na=False)
    if leftover.any():
        result[leftover] = _naive(pd.to_datetime(text[leftover], format="mixed", errors="coerce", utc=True))
    return matched, result


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


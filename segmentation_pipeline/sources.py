"""Read a transaction log exactly as the user exported it, and map its columns to the canonical raw table.

Users export from shops, ERPs and spreadsheets, so nothing here expects them to edit the file:
any delimiter, a non-UTF-8 encoding, Excel cells that mix numbers and text, thousands separators and
several date conventions are all read. Cells that still cannot be parsed are kept (as NaN/NaT) and
described in `parse_errors`, so cleaning can reject and count them; only problems with the file as a
whole (missing columns, wrong column types, unreadable files) raise `InputDataError`.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from python_calamine import CalamineError

from segmentation_pipeline.config import CANONICAL_COLUMNS
from segmentation_pipeline.errors import InputDataError

__all__ = ["InputDataError", "READ_INFO_ATTR", "map_columns", "month_of", "read_table"]

logger = logging.getLogger(__name__)

# `read_table` leaves a dict here saying how the file was read (format, encoding, delimiter, cache).
READ_INFO_ATTR = "read_info"

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # latin-1 decodes any byte, so the chain always ends
SNIFF_BYTES = 64 * 1024
DELIMITER_CANDIDATES = (",", ";", "\t", "|")
WHITESPACE_SEPARATOR = r"\s+"
CACHE_FORMAT_VERSION = "1"  # bump when the parsed table's layout changes, so old cache files are ignored

ID_COLUMNS = ("customer_id", "invoice_id", "product_id")
# Text columns are categorical with sorted categories (so code order is name order), except these, whose
# many distinct values would make sorting cost more than it saves.
UNSORTED_TEXT_COLUMNS = ("invoice_id",)
NUMERIC_COLUMNS = ("quantity", "unit_price", "amount")
REQUIRED_COLUMNS = ("customer_id", "timestamp")
# Names this module and cleaning give columns: an unmapped file column so named is kept as `file:<name>`,
# so that, say, an unmapped 'amount' cannot pass for the real one.
RESERVED_COLUMNS = frozenset(CANONICAL_COLUMNS) | {"source_row", "parse_errors", "is_return", "reject_reason"}
MAX_UNPARSEABLE_SHARE = 0.5  # above this share of non-empty cells, the column is the wrong type, not dirty
MIN_CUSTOMERS = 2
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


# --------------------------------------------------------------------------------------------- reading


def read_table(
    path: str | Path,
    read_options: dict | None = None,
    encoding: str | None = None,
    cache_dir: str | Path | None = None,
    kind: str = "Transaction file",
) -> pd.DataFrame:
    """Read a .xlsx/.xls/.csv/.txt/.parquet file with all its columns, as the file has them.

    `read_options` go to the pandas reader (e.g. `{"sep": ";"}`, `{"sheet_name": "2011"}`); a text file's
    delimiter is detected when none is given. With `encoding=None` a text file is read as UTF-8, falling
    back to cp1252 then latin-1. Spreadsheets are cached as parquet under `cache_dir`, keyed by the file's
    content and the read options. How the file was read is in `table.attrs[READ_INFO_ATTR]`. `kind` names
    the file in error messages ("Transaction file", "Persona file", ...).
    """
    path = Path(path)
    options = dict(read_options or {})
    if not path.is_file():
        raise InputDataError(f"{kind} '{path}' does not exist or is not a file.")
    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES + TEXT_SUFFIXES + PARQUET_SUFFIXES:
        supported = ", ".join(EXCEL_SUFFIXES + TEXT_SUFFIXES + PARQUET_SUFFIXES)
        raise InputDataError(f"{kind} '{path}' has the unsupported type '{suffix}'; use one of {supported}.")
    if path.stat().st_size == 0:
        raise InputDataError(f"{kind} '{path}' is empty (0 bytes).")

    if suffix in EXCEL_SUFFIXES:
        table, info = _read_spreadsheet(path, options, cache_dir, kind)
    elif suffix in TEXT_SUFFIXES:
        table, info = _read_text(path, options, encoding, kind)
    else:
        table, info = _read_parquet(path, options, kind), {"format": "parquet"}

    if len(table) == 0:
        raise InputDataError(f"{kind} '{path}' has no data rows, only a header or nothing at all.")
    table.attrs[READ_INFO_ATTR] = {"path": str(path), **info}
    return table


def _read_text(path: Path, options: dict, encoding: str | None, kind: str) -> tuple[pd.DataFrame, dict]:
    """Delimited text, every cell read as text so ids like '00123' survive; map_columns parses types."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        whole_file = not handle.read(1)
    if encoding is not None:
        _check_encoding_name(encoding, path)
        encodings: tuple[str, ...] = (encoding,)
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = FALLBACK_ENCODINGS
    if b"\x00" in head and not codecs.lookup(encodings[0]).name.startswith(("utf-16", "utf-32")):
        raise InputDataError(f"{kind} '{path}' is binary, not delimited text (it contains NUL bytes).")

    if "sep" not in options and "delimiter" not in options:
        sample = head.decode(encodings[0] if encodings[0] == "utf-16" else "latin-1", errors="replace")
        options["sep"] = _detect_delimiter(sample, whole_file)
    separator = options.get("sep", options.get("delimiter"))
    if separator is None or (len(separator) > 1 and separator != WHITESPACE_SEPARATOR):
        options.setdefault("engine", "python")  # regex separators and pandas' own sniffing need it
    reader_options = {"dtype": str, "keep_default_na": False, "na_values": [""], **options}

    rejected: list[str] = []
    for candidate in encodings:
        try:
            table = pd.read_csv(path, encoding=candidate, **reader_options)
        except UnicodeError:
            rejected.append(candidate)
            continue
        except pd.errors.EmptyDataError:
            raise InputDataError(f"{kind} '{path}' has no data rows, only blank lines.") from None
        except (pd.errors.ParserError, ValueError, csv.Error) as exc:
            raise InputDataError(f"{kind} '{path}' cannot be read as delimited text: {exc}") from None
        note = f"'{path.name}' is not valid {' or '.join(rejected)} text; read it as {candidate}" if rejected else None
        if note:
            logger.warning(note)
        return table, {"format": "text", "encoding": candidate, "encoding_note": note, "delimiter": separator}
    raise InputDataError(
        f"{kind} '{path}' cannot be decoded as {' or '.join(rejected)}; "
        "give the file's encoding (e.g. cp1252), or none to try utf-8, cp1252 and latin-1."
    )


def _check_encoding_name(encoding: str, path: Path) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputDataError(f"Encoding '{encoding}' given for '{path}' is not a known text encoding.") from None


def _detect_delimiter(sample: str, whole_file: bool) -> str:
    """The candidate that splits every sampled line into the same number (> 1) of fields, most fields first.

    Parsing with the csv module (not counting characters) keeps delimiters inside quoted text from voting.
    """
    if not whole_file and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # the last line may be cut off mid-way
    best, best_fields = None, 1
    for delimiter in DELIMITER_CANDIDATES:
        try:
            counts = {len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row}
        except csv.Error:
            continue
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = delimiter, fields
    if best is not None:
        return best
    whitespace_counts = {len(line.split()) for line in sample.splitlines() if line.strip()}
    if len(whitespace_counts) == 1 and whitespace_counts.pop() > 1:
        return WHITESPACE_SEPARATOR
    return ","  # one column, or too irregular to tell: map_columns then lists the columns it did find


def _read_parquet(path: Path, options: dict, kind: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, **options)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError derive from these
        raise InputDataError(
            f"{kind} '{path}' cannot be read as parquet (corrupt or truncated?): {exc}"
        ) from None


def _read_spreadsheet(path: Path, options: dict, cache_dir: str | Path | None, kind: str) -> tuple[pd.DataFrame, dict]:
    """Parse the workbook, or reuse the parquet copy parsed from the same bytes with the same options."""
    info = {"format": "spreadsheet", "cache": "off"}
    if cache_dir is None:
        return _parse_spreadsheet(path, options, kind), info
    cache_file = Path(cache_dir) / f"{path.stem}-{_cache_key(path, options)}.parquet"
    if cache_file.is_file():
        try:
            return pd.read_parquet(cache_file), {**info, "cache": "hit", "cache_file": str(cache_file)}
        except (ImportError, ValueError, OSError) as exc:
            logger.warning("ignoring unreadable cache file %s: %s", cache_file, exc)
    table = _parse_spreadsheet(path, options, kind)
    stored = _store_in_cache(table, cache_file)
    return table, {**info, "cache": "miss", "cache_file": str(cache_file) if stored else None}


def _parse_spreadsheet(path: Path, options: dict, kind: str) -> pd.DataFrame:
    try:
        table = pd.read_excel(path, **{"engine": "calamine", **options})
    except (CalamineError, ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputDataError(
            f"{kind} '{path}' cannot be read as a spreadsheet (corrupt or truncated?): {exc}"
        ) from None
    if isinstance(table, dict):
        raise InputDataError(f"read_options for '{path}' select several sheets; set sheet_name to a single sheet.")
    return _parquet_safe(table)


def _cache_key(path: Path, options: dict) -> str:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    digest.update(json.dumps([CACHE_FORMAT_VERSION, options], sort_keys=True, default=repr).encode())
    return digest.hexdigest()[:32]


def _store_in_cache(table: pd.DataFrame, cache_file: Path) -> bool:
    """Write atomically, so a killed run never leaves a half-written cache file that looks valid."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{cache_file.name}.", suffix=".tmp", dir=cache_file.parent)
    os.close(handle)
    try:
        table.to_parquet(temp_name, index=False)
        os.replace(temp_name, cache_file)
        return True
    except (ImportError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        logger.warning("could not cache the parsed spreadsheet as %s: %s", cache_file, exc)
        return False
    finally:
        Path(temp_name).unlink(missing_ok=True)


def _parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Text column names, and columns mixing numbers and text (Excel invoice numbers) rendered as text.

    Parquet needs one type per column; rendering as text keeps every cell's value as the file shows it.
    """
    table = table.rename(columns=str)
    mixed = [
        name
        for name in table.columns
        if table[name].dtype == object and pd.api.types.infer_dtype(table[name], skipna=True).startswith("mixed")
    ]
    if mixed:
        table = table.assign(**{name: _as_text(table[name]) for name in mixed})
    return table


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
    mapping = _checked_mapping(df, columns, source)
    if len(df) == 0:
        raise InputDataError(f"'{source}' has no data rows.")
    index = pd.RangeIndex(len(df))
    parsed: dict[str, pd.Series] = {"source_row": pd.Series(np.arange(len(df), dtype=np.int64), index=index)}
    unparseable: list[tuple[str, pd.Series, np.ndarray]] = []
    for canonical, file_column in mapping.items():
        values = df[file_column].reset_index(drop=True)
        described = f"Column '{file_column}' (mapped to {canonical}) in '{source}'"
        if canonical in NUMERIC_COLUMNS:
            result, bad = _parse_numbers(values)
            _require_mostly_parsed(values, result, bad, described, "numbers")
        elif canonical == "timestamp":
            result, bad = _parse_timestamps(values, timestamp_format, described)
            _require_mostly_parsed(values, result, bad, described, "dates and times")
        else:
            sort = canonical not in UNSORTED_TEXT_COLUMNS
            result, bad = (_id_text(values, sort) if canonical in ID_COLUMNS else _clean_text(values, sort)), None
        parsed[canonical] = result
        if bad is not None and bad.any():
            unparseable.append((canonical, values, bad))

    _require_values(parsed, mapping, source)
    _require_several_customers(parsed["customer_id"], mapping["customer_id"], source)
    parsed["parse_errors"] = _describe_parse_errors(unparseable, len(df))
    raw = pd.DataFrame(parsed, index=index)

    used = set(mapping.values())
    kept = _parquet_safe(df[[c for c in df.columns if c not in used]].reset_index(drop=True))
    kept = kept.rename(columns=lambda name: f"file:{name}" if name in RESERVED_COLUMNS else name)
    return pd.concat([raw, kept], axis=1)


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
        examples = ", ".join(f"'{v}'" for v in _as_text(values[bad]).drop_duplicates().head(3))
        raise InputDataError(
            f"{described} does not hold {kind}: {unparsed:,} of its {non_empty:,} non-empty cells "
            f"cannot be read as {kind}, e.g. {examples}."
        )


def _require_values(parsed: dict[str, pd.Series], mapping: dict[str, str], source: str) -> None:
    revenue = ("quantity", "unit_price") if {"quantity", "unit_price"} <= mapping.keys() else ("amount",)
    for canonical in REQUIRED_COLUMNS + revenue:
        if parsed[canonical].isna().all():
            raise InputDataError(
                f"Column '{mapping[canonical]}' (mapped to {canonical}) in '{source}' is empty: "
                f"none of its {len(parsed[canonical]):,} cells has a value."
            )


def _require_several_customers(customer_ids: pd.Series, file_column: str, source: str) -> None:
    distinct = customer_ids.nunique()
    if distinct < MIN_CUSTOMERS:
        raise InputDataError(
            f"Column '{file_column}' (mapped to customer_id) in '{source}' has {distinct} distinct customer "
            f"({customer_ids.dropna().iloc[0]!r}); segmentation needs at least {MIN_CUSTOMERS} customers."
        )


def _describe_parse_errors(unparseable: list[tuple[str, pd.Series, np.ndarray]], rows: int) -> pd.Series:
    """"timestamp='2011-13-45'; quantity='abc'" per row, built only over the (few) rows with bad cells."""
    if not unparseable:  # the usual case: an all-missing column, without a Python object per row
        return pd.Series(pd.array(pa.nulls(rows, pa.large_string()), dtype="str"))
    messages = np.full(rows, np.nan, dtype=object)
    for canonical, values, bad in unparseable:
        positions = np.flatnonzero(bad)
        cells = _as_text(values.iloc[positions]).str.slice(0, 60).to_numpy(dtype=object)
        described = f"{canonical}='" + cells + "'"
        current = messages[positions]
        first = pd.isna(current)
        messages[positions] = np.where(first, described, current.astype(str) + "; " + described)
    return pd.Series(messages, dtype="str")


# ------------------------------------------------------------------------------------- cell parsing


def _as_text(values: pd.Series) -> pd.Series:
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
    text = _as_text(values).str.strip()
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


def _clean_text(values: pd.Series, sort: bool) -> pd.Series:
    """Text with surrounding blanks removed; blank cells become missing."""
    codes, distinct = _distinct(values)
    return _as_categorical(_stripped(distinct), codes, values.index, sort)


def _id_text(values: pd.Series, sort: bool) -> pd.Series:
    """Identifiers as text, '17850.0' (a whole number stored as a float, then exported) as '17850'."""
    codes, distinct = _distinct(values)
    text = _stripped(distinct).str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return _as_categorical(text, codes, values.index, sort)


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


def _parse_timestamps(values: pd.Series, timestamp_format: str | None, described: str) -> tuple[pd.Series, np.ndarray]:
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
        return _naive(pd.to_datetime(_as_text(whole), format="%Y%m%d", errors="coerce"))
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

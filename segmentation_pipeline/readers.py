"""Read a table file exactly as the user exported it: csv/txt with any delimiter and encoding,
spreadsheets (with a parse cache keyed on content), parquet.

Users export from shops, ERPs, CRMs and spreadsheets, so nothing here expects them to edit the file.
Every domain reads its input through `read_table`; mapping the columns to a domain's canonical table
is the domain's business. Problems with the file as a whole raise `InputDataError` naming the file.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import inspect
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from python_calamine import CalamineError

from segmentation_pipeline.cells import as_text
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.storage import atomic_path, parquet_rows

logger = logging.getLogger(__name__)

READ_INFO_ATTR = "read_info"

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")  # latin-1 decodes any byte, so the chain always ends
SNIFF_BYTES = 64 * 1024
DELIMITER_CANDIDATES = (",", ";", "\t", "|")
WHITESPACE_SEPARATOR = r"\s+"
# Files larger than this are read in chunks of CHUNK_ROWS rows (parquet: more rows than CHUNK_ROWS),
# so a log of any size is read in bounded memory; smaller files are read whole.
STREAM_TEXT_BYTES = 256 * 2**20
CHUNK_ROWS = 1_000_000
DECODE_BLOCK_BYTES = 16 * 2**20
CACHE_FORMAT_VERSION = "1"  # bump when the parsed table's layout changes, so old cache files are ignored


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

    _check_read_options(path, options, kind)
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


def iter_table_chunks(
    path: str | Path,
    read_options: dict | None = None,
    encoding: str | None = None,
    cache_dir: str | Path | None = None,
    kind: str = "Transaction file",
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """`read_table` in consecutive chunks of at most `chunk_rows` rows, for files too large to hold.

    A parquet file with more rows than `chunk_rows` (and no read_options) is read by row batches and a
    delimited text file above STREAM_TEXT_BYTES with pandas' chunked reader; any other file is one
    chunk, read by `read_table`. Every chunk carries the same read info in `attrs[READ_INFO_ATTR]`.
    """
    path = Path(path)
    options = dict(read_options or {})
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES and not options and path.is_file() and _parquet_rows(path) > chunk_rows:
        yield from _parquet_chunks(path, kind, chunk_rows)
    elif suffix in TEXT_SUFFIXES and path.is_file() and path.stat().st_size > STREAM_TEXT_BYTES:
        _check_read_options(path, options, kind)
        yield from _text_chunks(path, options, encoding, kind, chunk_rows)
    else:
        yield read_table(path, options, encoding, cache_dir, kind)


def _parquet_rows(path: Path) -> int:
    try:
        return parquet_rows(path)
    except (ValueError, TypeError, OSError):
        return 0  # not readable as parquet: `read_table` says so, naming the file


def _parquet_chunks(path: Path, kind: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            chunk = batch.to_pandas()
            chunk.attrs[READ_INFO_ATTR] = {"path": str(path), "format": "parquet", "chunk_rows": chunk_rows}
            yield chunk
    except (ValueError, TypeError, OSError) as exc:
        raise InputDataError(f"{kind} '{path}' cannot be read as parquet (corrupt or truncated?): {exc}") from None


def _reader_options(suffix: str) -> tuple[str, set[str]]:
    """(reader name, the keyword arguments `read_options` may give it) for a file suffix. The file
    argument is the reader's own business, and a text file's encoding has its own config key."""
    if suffix in EXCEL_SUFFIXES:
        return "spreadsheet", set(inspect.signature(pd.read_excel).parameters) - {"io"}
    if suffix in TEXT_SUFFIXES:
        return "delimited-text", set(inspect.signature(pd.read_csv).parameters) - {"filepath_or_buffer", "encoding"}
    keywords = set(inspect.signature(pd.read_parquet).parameters) | set(inspect.signature(pq.read_table).parameters)
    return "parquet", keywords - {"path", "source", "kwargs"}  # read_parquet passes the rest to pyarrow


def _check_read_options(path: Path, options: dict, kind: str) -> None:
    """An unknown `read_options` key is a one-line error naming the file and the key, not a TypeError."""
    reader, accepted = _reader_options(path.suffix.lower())
    for key in options:
        if key not in accepted:
            close = _closest_option(str(key), sorted(accepted))
            hint = f" (did you mean '{close}'?)" if close else ""
            where = " (set transactions.encoding instead)" if key == "encoding" else hint
            raise InputDataError(
                f"{kind} '{path}': read_options key '{key}' is not an option of the {reader} reader{where}."
            )


def _closest_option(key: str, accepted: list[str]) -> str | None:
    """The option a mistyped key probably meant: one that starts the key or that the key starts
    ('separator' -> 'sep', 'sheet' -> 'sheet_name'), else the closest spelling."""
    lowered = key.lower()
    prefixed = [option for option in accepted if lowered.startswith(option) or option.startswith(lowered)]
    if prefixed:
        return min(prefixed, key=lambda option: abs(len(option) - len(lowered)))
    close = difflib.get_close_matches(lowered, accepted, n=1, cutoff=0.75)
    return close[0] if close else None


def _read_text(path: Path, options: dict, encoding: str | None, kind: str) -> tuple[pd.DataFrame, dict]:
    """Delimited text, every cell read as text so ids like '00123' survive; map_columns parses types."""
    encodings, reader_options, separator = _text_reading(path, options, encoding, kind)
    rejected: list[str] = []
    for candidate in encodings:
        try:
            with _text_errors(path, kind):
                table = pd.read_csv(path, encoding=candidate, **reader_options)
        except UnicodeError:
            rejected.append(candidate)
            continue
        return table, _text_info(path, candidate, rejected, separator)
    raise _undecodable(path, rejected, kind)


def _text_chunks(path: Path, options: dict, encoding: str | None, kind: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A large delimited text file in chunks of `chunk_rows` rows, read as `_read_text` reads it whole.

    The encoding is settled first by decoding the whole file in blocks (memory stays flat), so a chunk
    far into the file cannot turn out undecodable after earlier chunks were used.
    """
    encodings, reader_options, separator = _text_reading(path, options, encoding, kind)
    rejected = [candidate for candidate in encodings[:-1] if not _decodes(path, candidate)]
    candidate = encodings[len(rejected)]
    if len(encodings) == 1 and not _decodes(path, candidate):
        raise _undecodable(path, [candidate], kind)
    info = _text_info(path, candidate, rejected, separator)
    with _text_errors(path, kind), pd.read_csv(path, encoding=candidate, chunksize=chunk_rows, **reader_options) as chunks:
        for chunk in chunks:
            chunk.attrs[READ_INFO_ATTR] = {"path": str(path), **info}
            yield chunk


def _text_reading(path: Path, options: dict, encoding: str | None, kind: str) -> tuple[tuple[str, ...], dict, str | None]:
    """(encodings to try in order, pandas reader options, the separator) for a delimited text file."""
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
    if separator is not None and not isinstance(separator, str):
        raise InputDataError(f"{kind} '{path}': read_options separator must be text, got {separator!r}.")
    if separator is None or (len(separator) > 1 and separator != WHITESPACE_SEPARATOR):
        options.setdefault("engine", "python")  # regex separators and pandas' own sniffing need it
    return encodings, {"dtype": str, "keep_default_na": False, "na_values": [""], **options}, separator


@contextmanager
def _text_errors(path: Path, kind: str) -> Iterator[None]:
    """pandas' parse errors as one-line InputDataErrors naming the file (UnicodeError passes through)."""
    try:
        yield
    except UnicodeError:
        raise
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{kind} '{path}' has no data rows, only blank lines.") from None
    except (pd.errors.ParserError, ValueError, TypeError, csv.Error) as exc:
        raise InputDataError(f"{kind} '{path}' cannot be read as delimited text: {exc}") from None


def _text_info(path: Path, encoding: str, rejected: list[str], separator: str | None) -> dict:
    note = f"'{path.name}' is not valid {' or '.join(rejected)} text; read it as {encoding}" if rejected else None
    if note:
        logger.warning(note)
    return {"format": "text", "encoding": encoding, "encoding_note": note, "delimiter": separator}


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while block := handle.read(DECODE_BLOCK_BYTES):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeError:
        return False
    return True


def _undecodable(path: Path, rejected: list[str], kind: str) -> InputDataError:
    return InputDataError(
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
    except (ValueError, TypeError, OSError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError derive from these
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
    except (CalamineError, ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InputDataError(
            f"{kind} '{path}' cannot be read as a spreadsheet (corrupt or truncated?): {exc}"
        ) from None
    if isinstance(table, dict):
        raise InputDataError(f"read_options for '{path}' select several sheets; set sheet_name to a single sheet.")
    return parquet_safe(table)


def _cache_key(path: Path, options: dict) -> str:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    digest.update(json.dumps([CACHE_FORMAT_VERSION, options], sort_keys=True, default=repr).encode())
    return digest.hexdigest()[:32]


def _store_in_cache(table: pd.DataFrame, cache_file: Path) -> bool:
    """Write atomically, so a killed run never leaves a half-written cache file that looks valid."""
    try:
        with atomic_path(cache_file) as temp:
            table.to_parquet(temp, index=False)
        return True
    except (ImportError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        logger.warning("could not cache the parsed spreadsheet as %s: %s", cache_file, exc)
        return False


def parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
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
        table = table.assign(**{name: as_text(table[name]) for name in mixed})
    return table


"""File writes that are whole or absent: atomic writes, parquet and CSV tables.

Every write goes to a temporary file in the target folder (named `.<name>.<random>.segtmp`, so
cleanup can tell the project's own temporary files from anybody else's) and is renamed into place:
a reader never sees half a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from segmentation_pipeline.errors import StorageError, storage_error
from segmentation_pipeline.layout import TEMP_SUFFIX


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A file-system failure (read-only folder, full disk, a file where a folder should be) becomes a
    `StorageError` naming `path`, so the user reads which file could not be written, not a traceback.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(handle)
        os.chmod(temp_name, 0o644)  # mkstemp makes files private; outputs are for reading
    except OSError as exc:
        raise storage_error(path, exc) from None
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        raise storage_error(path, exc) from None
    finally:
        temp.unlink(missing_ok=True)


def writable_folder(path: Path, role: str) -> Path:
    """`path` as a folder this process can write, created if missing; else a one-line StorageError
    naming the folder and its role ("output_dir", "DAGSTER_HOME") before any work starts."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StorageError(errno.ENOTDIR, f"{path}: {role} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check.", suffix=TEMP_SUFFIX):
            pass
    except OSError as exc:
        raise storage_error(path, exc, f"{role} cannot be written") from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Categorical columns keep only the categories they use (a month part need not carry them all)."""
    categorical = df.select_dtypes("category").columns
    if len(categorical):
        df = df.assign(**{c: df[c].cat.remove_unused_categories() for c in categorical})
    with atomic_path(path) as temp:
        df.to_parquet(temp, index=False)
    return Path(path)


def _with_common_encoding(tables: list[pa.Table]) -> list[pa.Table]:
    """Dictionary-encode a text column in every part where any part has it dictionary-encoded.

    Month files written at different times may differ (plain text vs categorical); concatenation
    needs one type per column.
    """
    encoded = {f.name for t in tables for f in t.schema if pa.types.is_dictionary(f.type)}
    result = []
    for table in tables:
        for name in encoded & set(table.column_names):
            index = table.schema.get_field_index(name)
            if not pa.types.is_dictionary(table.schema.field(index).type):
                table = table.set_column(index, name, pc.dictionary_encode(table.column(index)))
        result.append(table)
    return result


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV for spreadsheets, written by pyarrow (about 10x faster than pandas); times to the second."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("s"), safe=False))
    with atomic_path(path) as temp:
        pa_csv.write_csv(table, temp)
    return Path(path)


def read_parquet_parts(paths: Iterable[Path], columns: list[str] | None = None) -> pd.DataFrame:
    """Month files of one table concatenated in the given order, as one DataFrame."""
    tables = _with_common_encoding([pq.read_table(path, columns=columns) for path in paths])
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def parquet_rows(path: Path) -> int:
    """Row count from the file's footer, without reading the data."""
    return pq.ParquetFile(path).metadata.num_rows

"""File writes that are whole or absent: atomic writes, parquet and CSV tables.

Every write goes to a temporary file in the target folder (named `.<name>.<random>.segtmp`, so
cleanup can tell the project's own temporary files from anybody else's) and is renamed into place:
a reader never sees half a file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
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


WRITE_SLICE_ROWS = 500_000  # rows converted to Arrow at a time when a table is written


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """The table as parquet, converted to Arrow a slice of WRITE_SLICE_ROWS rows at a time, so writing
    a customer table of millions of rows never holds a second, Arrow copy of all of it. Categorical
    columns keep only the categories they use."""
    df = _used_categories(df)
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    with atomic_path(path) as temp, pq.ParquetWriter(temp, schema) as writer:
        for start in range(0, max(len(df), 1), WRITE_SLICE_ROWS):
            part = df.iloc[start : start + WRITE_SLICE_ROWS]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
    return Path(path)


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A parquet file as a DataFrame, like `pd.read_parquet`, but converting column by column and
    releasing each Arrow column once converted: the peak is about one copy of the table, not two
    (and it is faster, the columns are not consolidated into blocks)."""
    return pq.read_table(path, columns=columns).to_pandas(split_blocks=True, self_destruct=True)


class PartitionedParquetWriter:
    """Append row chunks to one parquet file per partition key (a month), without holding the table.

    A table too large for memory is written chunk by chunk: each chunk's rows go to their key's file
    as a new row group. Files are written under temporary names and renamed into place by `close`, so
    an interrupted write leaves no file that looks complete. Text columns are stored as dictionaries
    with 32-bit indices whatever a chunk's categoricals used, so every chunk of a key has one schema;
    a column whose type changes between chunks is an error naming the column.

    `plain_text` columns (identifiers: nearly one value per row) are stored as plain strings. Parquet
    dictionary-encodes them per row group by itself, while an Arrow dictionary of millions of ids is
    rewritten for every row group and unified again on every read: a month of ten million rows
    wrote and read several times slower that way.
    """

    def __init__(self, path_of: Callable[[str], Path], plain_text: Sequence[str] = ()):
        self._path_of = path_of
        self._plain_text = tuple(plain_text)
        self._stack = ExitStack()
        self._writers: dict[str, tuple[pq.ParquetWriter, Path]] = {}
        self.rows: dict[str, int] = {}

    def write(self, key: str, frame: pd.DataFrame) -> None:
        # `plain_text` columns are decoded to strings below: pruning their categories would be wasted work.
        table = pa.Table.from_pandas(_used_categories(frame, keep=self._plain_text), preserve_index=False)
        table = _uniform_dictionaries(table, self._plain_text)
        if key not in self._writers:
            temp = self._stack.enter_context(atomic_path(self._path_of(key)))
            self._writers[key] = (pq.ParquetWriter(temp, table.schema), temp)
            self.rows[key] = 0
        writer, _ = self._writers[key]
        if not table.schema.equals(writer.schema, check_metadata=False):
            table = _conformed(table, writer.schema)
        writer.write_table(table)
        self.rows[key] += len(table)

    def close(self) -> dict[str, int]:
        """Finish every file and move it into place; rows written per key."""
        for writer, _ in self._writers.values():
            writer.close()
        self._stack.close()
        return dict(self.rows)

    def abort(self) -> None:
        """Drop every file being written (their temporary files are removed)."""
        for writer, _ in self._writers.values():
            writer.close()
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> PartitionedParquetWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _used_categories(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Categorical columns keep only the categories they use (a month part need not carry them all);
    the `keep` columns are left as they are."""
    categorical = [c for c in frame.select_dtypes("category").columns if c not in keep]
    if not len(categorical):
        return frame
    return frame.assign(**{c: _without_unused_categories(frame[c]) for c in categorical})


def _without_unused_categories(column: pd.Series) -> pd.Series:
    """`cat.remove_unused_categories()` in one linear pass over the codes: pandas sorts all of them
    to find the used ones, which is most of the cost of writing a month of ten million rows."""
    codes = column.cat.codes.to_numpy()
    used = np.zeros(len(column.cat.categories), dtype=bool)
    used[codes[codes >= 0]] = True
    if used.all():
        return column
    position = np.cumsum(used) - 1  # new code of each used category, in the old order
    remapped = np.where(codes >= 0, position[np.maximum(codes, 0)], -1)
    values = pd.Categorical.from_codes(remapped, column.cat.categories[used], ordered=column.cat.ordered)
    return pd.Series(values, index=column.index, name=column.name)


def _uniform_dictionaries(table: pa.Table, plain_text: Sequence[str] = ()) -> pa.Table:
    """Dictionary columns with int32 indices and string values, whichever width pandas chose; the
    `plain_text` ones as plain strings."""
    for index, field in enumerate(table.schema):
        stored = _stored_type(field, plain_text)
        if field.type != stored:
            table = table.set_column(index, field.name, table.column(index).cast(stored))
    return table


def _stored_type(field: pa.Field, plain_text: Sequence[str]) -> pa.DataType:
    text = pa.types.is_dictionary(field.type) or pa.types.is_large_string(field.type)
    if text and field.name in plain_text:
        return pa.string()
    if pa.types.is_dictionary(field.type):
        return pa.dictionary(pa.int32(), pa.string())
    return field.type


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` cast to the schema of the chunks already written (a column empty in one chunk may come
    out as another type); different columns, or a column that cannot be cast, raise ValueError."""
    if table.column_names != schema.names:
        raise ValueError(f"chunk columns {table.column_names} differ from the first chunk's {schema.names}")
    columns = []
    for field, column in zip(schema, table.columns):
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column '{field.name}' changes type between chunks ({column.type} vs {field.type}): {exc}") from None
    return pa.Table.from_arrays(columns, schema=schema)


def write_csv(df: pd.DataFrame | Iterable[pd.DataFrame], path: Path) -> Path:
    """CSV for spreadsheets, written by pyarrow (about 10x faster than pandas); times to the second.
    A table too large to convert at once can come as consecutive chunks (same columns), written as
    they come under one header."""
    chunks = iter([df] if isinstance(df, pd.DataFrame) else df)
    with atomic_path(path) as temp:
        first = _csv_ready(pa.Table.from_pandas(next(chunks), preserve_index=False))
        with pa_csv.CSVWriter(temp, first.schema) as writer:
            writer.write_table(first)
            for chunk in chunks:
                writer.write_table(_csv_ready(pa.Table.from_pandas(chunk, preserve_index=False)).cast(first.schema))
    return Path(path)


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps to the second; dictionary columns as plain text (chunks may differ in dictionaries)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("s"), safe=False))
        elif pa.types.is_dictionary(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(field.type.value_type))
    return table


def parquet_rows(path: Path) -> int:
    """Row count from the file's footer, without reading the data."""
    return pq.ParquetFile(path).metadata.num_rows

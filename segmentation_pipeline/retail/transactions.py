"""The transaction log in force as one raw table: the files dropped in the inbox, else the configured source.

The inbox is the upload: while it holds transaction files, all of them together (in name order) are
the log, read with the configured column mapping; an empty inbox falls back to the configured file or
the embedded generator. Every path goes through the same column mapping, so synthetic data exercises
exactly the code a real export does. Each raw row also gets the month it belongs to: the month of its
timestamp when cleaning will accept that timestamp (`cleaning.transaction_months`), else none (missing),
so an unreadable, placeholder or future date never creates a month.

Nothing here runs when the Dagster definitions load: the months of the log are found when a run is
prepared (CLI, schedule, sensor), from a cache keyed on the files' content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline import readers
from segmentation_pipeline.config import (
    CANONICAL_COLUMNS,
    PipelineConfig,
    TransactionsSettings,
)
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail import sources, synthetic
from segmentation_pipeline.retail.cleaning import transaction_months
from segmentation_pipeline.storage import atomic_write_text

MONTH_COLUMN = "partition_month"
# Stored as plain text in the month files (see `storage.PartitionedParquetWriter`): nearly every
# basket has its own invoice id and a large log millions of customers.
IDENTIFIER_COLUMNS = ("invoice_id", "customer_id")
SOURCE_FILE_COLUMN = "source_file"  # inbox data: which file a row came from (with `source_row`, its line)
INBOX_SUFFIXES = readers.EXCEL_SUFFIXES + readers.TEXT_SUFFIXES + readers.PARQUET_SUFFIXES


@dataclass(frozen=True)
class RawTransactions:
    table: pd.DataFrame  # canonical raw table plus the month each row belongs to (MONTH_COLUMN, may be missing)
    source: str  # human description of where the rows came from
    customers: pd.DataFrame | None  # ground truth, synthetic data only


@dataclass(frozen=True)
class TransactionLog:
    """Which log is in force: inbox files, the configured file, or the embedded generator."""

    settings: TransactionsSettings
    files: tuple[Path, ...]  # inbox files, or the one configured file; empty for synthetic data
    from_inbox: bool

    @property
    def synthetic(self) -> bool:
        return not self.files

    def label(self) -> str:
        if self.from_inbox:
            return f"inbox {self.files[0].parent}: " + ", ".join(path.name for path in self.files)
        if self.synthetic:
            s = self.settings.synthetic
            return f"synthetic data ({s.customers} customers, {s.months} months from {s.start_month}, seed {s.seed})"
        return str(self.files[0])

    def fingerprint(self) -> str:
        """Changes when the log may have changed (settings, file names, sizes, modification times);
        cheap, so sensors can poll it without reading the data."""
        digest = hashlib.sha256(self.settings.model_dump_json().encode())
        for path in self.files:
            stat = path.stat() if path.exists() else None
            digest.update(f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode())
        return digest.hexdigest()[:16]


def inbox_files(folder: Path) -> list[Path]:
    """Transaction files in the inbox, by name. Hidden files, Office lock files (`~$...`) and other
    types (partial downloads such as `.part` or `.crdownload`) are not transaction files."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith((".", "~$")) and path.suffix.lower() in INBOX_SUFFIXES
    )


def log_in_force(config: PipelineConfig) -> TransactionLog:
    inbox = inbox_files(config.inbox_path())
    if inbox:
        return TransactionLog(config.transactions, tuple(inbox), from_inbox=True)
    path = config.transactions_path()
    return TransactionLog(config.transactions, (path,) if path else (), from_inbox=False)


def iter_raw(log: TransactionLog, cache_dir: Path, as_of: pd.Timestamp | str) -> Iterator[pd.DataFrame]:
    """The log in force as consecutive canonical raw chunks, each row with its month (MONTH_COLUMN).

    Files are read in chunks (`readers.iter_table_chunks`), so a log of any size passes in bounded
    memory; every row is kept. The checks about a file as a whole run after its last chunk.
    `as_of` is the run's date (see cleaning).
    """
    settings = log.settings
    for path, columns, timestamp_format, source in _mapped_sources(log, cache_dir):
        mapping = sources.ChunkedMapping(columns, timestamp_format, source)
        for frame in readers.iter_table_chunks(path, settings.read_options, settings.encoding, cache_dir):
            table = mapping.map(frame)
            if log.from_inbox:
                table[SOURCE_FILE_COLUMN] = path.name
            yield _with_month(table, settings, as_of)
        mapping.finish()


def load_raw(log: TransactionLog, cache_dir: Path, as_of: pd.Timestamp | str) -> RawTransactions:
    """The whole log in force as one raw table (`iter_raw`'s chunks together), for callers that hold it."""
    chunks = list(iter_raw(log, cache_dir, as_of))
    table = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return RawTransactions(table, log.label(), ground_truth(log, cache_dir))


def ground_truth(log: TransactionLog, cache_dir: Path) -> pd.DataFrame | None:
    """The synthetic customers' true profiles; None for real data (a file or the inbox)."""
    return pd.read_parquet(_synthetic(log.settings, cache_dir)[1]) if log.synthetic else None


def data_months(log: TransactionLog, cache_dir: Path, as_of: pd.Timestamp | str) -> list[str]:
    """The months ('YYYY-MM', sorted) in which the log has transactions with a plausible timestamp.

    Synthetic data knows its months; each file is read once per content, reading settings and run
    date and the answer cached, so preparing a run on an unchanged export costs a hash of the file.
    """
    if log.synthetic:
        start = pd.Period(log.settings.synthetic.start_month, freq="M")
        return [str(start + offset) for offset in range(log.settings.synthetic.months)]
    months: set[str] = set()
    for path in log.files:
        months.update(_file_months(log.settings, path, cache_dir, as_of))
    return sorted(months)


def _mapped_sources(log: TransactionLog, cache_dir: Path) -> list[tuple[Path, dict, str | None, str]]:
    """(file, column mapping, timestamp format, name in messages) of each file of the log."""
    settings = log.settings
    if log.synthetic:
        identity = {name: (name if name in synthetic.TRANSACTION_COLUMNS else None) for name in CANONICAL_COLUMNS}
        return [(_synthetic(settings, cache_dir)[0], identity, None, "synthetic data")]
    return [(path, settings.columns.as_dict(), settings.timestamp_format, str(path)) for path in log.files]


def _file_months(settings: TransactionsSettings, path: Path, cache_dir: Path, as_of: pd.Timestamp | str) -> list[str]:
    if not Path(path).is_file():
        raise InputDataError(f"Transaction file '{path}' does not exist or is not a file.")
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    reading = settings.model_dump(
        include={"columns", "read_options", "timestamp_format", "encoding", "earliest_timestamp"}
    )
    reading["as_of"] = str(pd.Timestamp(as_of).date())
    reading["reader"] = Path(path).suffix.lower()  # the same bytes named .xlsx are not the .csv they were
    digest.update(json.dumps(reading, sort_keys=True, default=str).encode())
    cached = Path(cache_dir) / f"months_{digest.hexdigest()[:16]}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    single = TransactionLog(settings, (Path(path),), from_inbox=False)
    months = sorted({month for chunk in iter_raw(single, cache_dir, as_of) for month in chunk[MONTH_COLUMN].dropna().unique()})
    if not months:
        raise InputDataError(
            f"{path}: column `{settings.columns.timestamp}`: no timestamp between "
            f"{settings.earliest_timestamp} and the run's date {pd.Timestamp(as_of).date()}"
        )
    atomic_write_text(cached, json.dumps(months))
    return months


def _with_month(table: pd.DataFrame, settings: TransactionsSettings, as_of: pd.Timestamp | str) -> pd.DataFrame:
    table = table.copy()
    table[MONTH_COLUMN] = transaction_months(table["timestamp"], as_of, settings.cleaning_rules())
    return table


def synthetic_files(settings: TransactionsSettings, cache_dir: Path) -> tuple[Path, Path]:
    """Where the configured synthetic data is cached: (transactions, customers) parquet files, named by
    the synthetic settings and the persona/product files, so other settings never reuse them."""
    digest = hashlib.sha256(json.dumps(settings.synthetic.model_dump(), sort_keys=True).encode())
    for path in (synthetic.DEFAULT_PERSONAS_PATH, synthetic.DEFAULT_HIERARCHY_PATH):
        digest.update(Path(path).read_bytes())
    key = digest.hexdigest()[:16]
    return Path(cache_dir) / f"synthetic_{key}_transactions.parquet", Path(cache_dir) / f"synthetic_{key}_customers.parquet"


def _synthetic(settings: TransactionsSettings, cache_dir: Path) -> tuple[Path, Path]:
    """The synthetic data's files (`synthetic_files`), generated on first use in blocks
    (`synthetic.write_generated`), so a log of any size is generated in bounded memory."""
    s = settings.synthetic
    transactions_path, customers_path = synthetic_files(settings, cache_dir)
    if not (transactions_path.exists() and customers_path.exists()):
        synthetic.write_generated(transactions_path, customers_path, s.customers, s.months, s.seed, s.start_month)
    return transactions_path, customers_path

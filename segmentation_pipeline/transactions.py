"""The transaction log in force as one raw table: the files dropped in the inbox, else the configured source.

The inbox is the upload: while it holds transaction files, all of them together (in name order) are
the log, read with the configured column mapping; an empty inbox falls back to the configured file or
the embedded generator. Every path goes through the same column mapping, so synthetic data exercises
exactly the code a real export does. Each raw row also gets the month partition it belongs to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline import sources, synthetic
from segmentation_pipeline.config import CANONICAL_COLUMNS, TransactionsSettings
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.storage import atomic_write_text, write_parquet

MONTH_COLUMN = "partition_month"
SOURCE_FILE_COLUMN = "source_file"  # inbox data: which file a row came from (with `source_row`, its line)
INBOX_SUFFIXES = sources.EXCEL_SUFFIXES + sources.TEXT_SUFFIXES + sources.PARQUET_SUFFIXES


@dataclass(frozen=True)
class RawTransactions:
    table: pd.DataFrame  # canonical raw table plus the `month` each row belongs to
    source: str  # human description of where the rows came from
    customers: pd.DataFrame | None  # ground truth, synthetic data only


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


def load_raw(settings: TransactionsSettings, cache_dir: Path, inbox: Sequence[Path] = ()) -> RawTransactions:
    """Read and map the log in force (the `inbox` files if any, else the configured source); every row is kept."""
    if inbox:
        tables = [_mapped_file(settings, path, cache_dir).assign(**{SOURCE_FILE_COLUMN: path.name}) for path in inbox]
        table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        return RawTransactions(_with_month(table), inbox_label(inbox), None)
    if settings.source == "synthetic":
        data = _synthetic(settings, cache_dir)
        identity = {name: (name if name in data.transactions.columns else None) for name in CANONICAL_COLUMNS}
        table = sources.map_columns(data.transactions, identity, None, source="synthetic data")
        return RawTransactions(_with_month(table), _synthetic_label(settings), data.customers)
    path = settings.source_path()
    return RawTransactions(_with_month(_mapped_file(settings, path, cache_dir)), str(path), None)


def ground_truth(settings: TransactionsSettings, cache_dir: Path, inbox: Sequence[Path] = ()) -> pd.DataFrame | None:
    """The synthetic customers' true profiles; None for real data (a file or the inbox)."""
    if inbox or settings.source != "synthetic":
        return None
    return _synthetic(settings, cache_dir).customers


def inbox_label(inbox: Sequence[Path]) -> str:
    return f"inbox {Path(inbox[0]).parent}: " + ", ".join(Path(p).name for p in inbox)


def data_months(settings: TransactionsSettings, cache_dir: Path, inbox: Sequence[Path] = ()) -> tuple[str, str]:
    """First and last month of the log in force ('YYYY-MM'), for the monthly partitions.

    Synthetic data knows its window; each file is scanned once per content and reading settings and
    the answer cached, so loading the definitions stays fast.
    """
    if inbox:
        windows = [_file_months(settings, path, cache_dir) for path in inbox]
        return min(first for first, _ in windows), max(last for _, last in windows)
    if settings.source == "synthetic":
        start = pd.Period(settings.synthetic.start_month, freq="M")
        return str(start), str(start + settings.synthetic.months - 1)
    return _file_months(settings, settings.source_path(), cache_dir)


def _mapped_file(settings: TransactionsSettings, path: Path, cache_dir: Path) -> pd.DataFrame:
    frame = sources.read_table(path, settings.read_options, settings.encoding, cache_dir=cache_dir)
    return sources.map_columns(frame, settings.columns.as_dict(), settings.timestamp_format, source=str(path))


def _file_months(settings: TransactionsSettings, path: Path, cache_dir: Path) -> tuple[str, str]:
    digest = hashlib.sha256(path.read_bytes())
    reading = settings.model_dump(include={"columns", "read_options", "timestamp_format", "encoding"})
    digest.update(json.dumps(reading, sort_keys=True, default=str).encode())
    cached = Path(cache_dir) / f"months_{digest.hexdigest()[:16]}.json"
    if cached.exists():
        first, last = json.loads(cached.read_text())
        return first, last
    months = sources.month_of(_mapped_file(settings, path, cache_dir)["timestamp"]).dropna()
    if months.empty:
        raise InputDataError(f"{path}: column `{settings.columns.timestamp}`: no timestamp could be parsed")
    first, last = str(months.min()), str(months.max())
    atomic_write_text(cached, json.dumps([first, last]))
    return first, last


def _with_month(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table[MONTH_COLUMN] = sources.month_of(table["timestamp"])
    return table


def _synthetic_label(settings: TransactionsSettings) -> str:
    s = settings.synthetic
    return f"synthetic data ({s.customers} customers, {s.months} months from {s.start_month}, seed {s.seed})"


def _synthetic(settings: TransactionsSettings, cache_dir: Path) -> synthetic.SyntheticData:
    """Generate once per settings and persona/product files; later runs read the cached parquet."""
    s = settings.synthetic
    digest = hashlib.sha256(json.dumps(s.model_dump(), sort_keys=True).encode())
    for path in (synthetic.DEFAULT_PERSONAS_PATH, synthetic.DEFAULT_HIERARCHY_PATH):
        digest.update(Path(path).read_bytes())
    key = digest.hexdigest()[:16]
    transactions_path = cache_dir / f"synthetic_{key}_transactions.parquet"
    customers_path = cache_dir / f"synthetic_{key}_customers.parquet"
    if transactions_path.exists() and customers_path.exists():
        return synthetic.SyntheticData(pd.read_parquet(transactions_path), pd.read_parquet(customers_path))
    data = synthetic.generate(customers=s.customers, months=s.months, seed=s.seed, start_month=s.start_month)
    write_parquet(data.transactions, transactions_path)
    write_parquet(data.customers, customers_path)
    return data

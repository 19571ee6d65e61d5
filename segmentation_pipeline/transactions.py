"""The configured transaction source — a user's file or the embedded generator — as one raw table.

Both paths go through the same column mapping, so synthetic data exercises exactly the code a real
export does. Each raw row also gets the month partition it belongs to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segmentation_pipeline import sources, synthetic
from segmentation_pipeline.config import CANONICAL_COLUMNS, TransactionsSettings
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.storage import atomic_write_text, write_parquet

MONTH_COLUMN = "partition_month"


@dataclass(frozen=True)
class RawTransactions:
    table: pd.DataFrame  # canonical raw table plus the `month` each row belongs to
    source: str  # human description of where the rows came from
    customers: pd.DataFrame | None  # ground truth, synthetic data only


def load_raw(settings: TransactionsSettings, cache_dir: Path) -> RawTransactions:
    """Read and map the configured source; every row of the source is kept."""
    if settings.source == "synthetic":
        data = _synthetic(settings, cache_dir)
        identity = {name: (name if name in data.transactions.columns else None) for name in CANONICAL_COLUMNS}
        table = sources.map_columns(data.transactions, identity, None, source="synthetic data")
        return RawTransactions(_with_month(table), _synthetic_label(settings), data.customers)
    path = settings.source_path()
    frame = sources.read_table(path, settings.read_options, settings.encoding, cache_dir=cache_dir)
    table = sources.map_columns(frame, settings.columns.as_dict(), settings.timestamp_format, source=str(path))
    return RawTransactions(_with_month(table), str(path), None)


def data_months(settings: TransactionsSettings, cache_dir: Path) -> tuple[str, str]:
    """First and last month of the data ('YYYY-MM'), for the monthly partitions.

    Synthetic data knows its window; a file is scanned once per content and the answer cached, so
    loading the definitions stays fast.
    """
    if settings.source == "synthetic":
        start = pd.Period(settings.synthetic.start_month, freq="M")
        return str(start), str(start + settings.synthetic.months - 1)
    path = settings.source_path()
    digest = hashlib.sha256(path.read_bytes())
    reading = settings.model_dump(include={"columns", "read_options", "timestamp_format", "encoding"})
    digest.update(json.dumps(reading, sort_keys=True, default=str).encode())
    cached = cache_dir / f"months_{digest.hexdigest()[:16]}.json"
    if cached.exists():
        first, last = json.loads(cached.read_text())
        return first, last
    months = load_raw(settings, cache_dir).table[MONTH_COLUMN].dropna()
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

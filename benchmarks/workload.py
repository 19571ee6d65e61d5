"""Benchmark workloads: a synthetic log of a given size and every stage's inputs, cached on disk.

A size is a number of transactions. The log comes from the project's own generator with one customer
per 20 transactions over 9 months (1,000,000 transactions <-> 50,000 customers); the actual row and
customer counts are recorded beside the data. Each stage's inputs are computed once with the stage
functions themselves and stored as parquet (tables) or pickle (clustering results and the like), so a
measurement reads its inputs and times only its own work. Stage inputs are keyed by a digest of the
project's code, so a code change recomputes them while the generated log stays.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from benchmarks import stages
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline.paths import PACKAGE_DIR


BENCHMARKS_DIR = Path(__file__).resolve().parent
DEFAULT_CACHE_DIR = BENCHMARKS_DIR / "cache"

ROWS_PER_CUSTOMER = 20
MONTHS = 9  # 50,000 customers over 9 months give ~1,024,000 lines with the shipped personas
MIN_CUSTOMERS = 300  # fewer leave HDBSCAN without a cluster of its minimum size
SEED = 42
START_MONTH = "2025-01"


def human_count(n: int) -> str:
    """1_000_000 -> '1M', 100_000 -> '100k', 2_500 -> '2.5k': labels for sizes."""
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= divisor:
            return f"{n / divisor:.3g}{suffix}"
    return str(n)


def parse_count(text: str) -> int:
    """'1000000', '1_000_000', '1M', '100k' -> int."""
    text = text.strip().replace("_", "").lower()
    multiplier = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if multiplier > 1 else text
    value = int(float(number) * multiplier)
    if value <= 0:
        raise ValueError(f"a size must be a positive number of transactions, got {text!r}")
    return value


@dataclass(frozen=True)
class SizeSpec:
    """Generator arguments for a log of about `rows` transactions."""

    rows: int
    customers: int
    months: int = MONTHS
    seed: int = SEED
    start_month: str = START_MONTH

    @classmethod
    def for_rows(cls, rows: int) -> SizeSpec:
        return cls(rows=rows, customers=max(rows // ROWS_PER_CUSTOMER, MIN_CUSTOMERS))

    @property
    def label(self) -> str:
        return human_count(self.rows)

    @property
    def key(self) -> str:
        return f"{self.rows}r_{self.customers}c_{self.months}m_{self.start_month}_s{self.seed}"

    def synthetic_settings(self) -> dict:
        """The pipeline config's `transactions.synthetic` section for this size."""
        return {"customers": self.customers, "months": self.months, "seed": self.seed, "start_month": self.start_month}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SizeSpec:
        return cls(**json.loads(text))


def code_digest() -> str:
    """Digest of the core modules, config files and stage recipes: inputs computed by other code are stale.

    The Dagster wiring and the CLI do not shape any stage input, so edits there keep the cache.
    """
    wiring = {PACKAGE_DIR / "defs", PACKAGE_DIR / "orchestration", PACKAGE_DIR / "definitions.py", PACKAGE_DIR / "cli.py"}
    core = [p for p in sorted(PACKAGE_DIR.rglob("*.py")) if not wiring & {p, *p.parents}]
    digest = hashlib.sha256()
    for path in core + sorted(PACKAGE_DIR.rglob("*.yml")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    digest.update(Path(stages.__file__).read_bytes())  # the recipes that compute the inputs
    return digest.hexdigest()[:12]


def _generator_digest() -> str:
    digest = hashlib.sha256((PACKAGE_DIR / "retail" / "synthetic.py").read_bytes())
    for path in (synthetic.DEFAULT_PERSONAS_PATH, synthetic.DEFAULT_HIERARCHY_PATH):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


class Workload:
    """One size's generated log and lazily computed, cached stage inputs."""

    def __init__(self, spec: SizeSpec, data_dir: Path, inputs_dir: Path):
        self.spec = spec
        self.data_dir = Path(data_dir)
        self.inputs_dir = Path(inputs_dir)

    @classmethod
    def current(cls, spec: SizeSpec, cache_dir: Path = DEFAULT_CACHE_DIR) -> Workload:
        """The workload for the code as it is now. A benchmark run decides this once and hands the
        folders to its workers, so they all share one set of inputs even if the code is edited meanwhile."""
        data_dir = Path(cache_dir) / f"{spec.key}_gen{_generator_digest()}"
        return cls(spec, data_dir, data_dir / f"inputs_{code_digest()}")

    # ------------------------------------------------------------------ the generated log

    @property
    def _transactions_path(self) -> Path:
        return self.data_dir / "transactions.parquet"

    @property
    def _customers_path(self) -> Path:
        return self.data_dir / "customers.parquet"

    @property
    def _meta_path(self) -> Path:
        return self.data_dir / "meta.json"

    def generate(self) -> dict:
        """Generate and store the log once; return its facts (rows, customers, generation seconds)."""
        if self._meta_path.exists() and self._transactions_path.exists() and self._customers_path.exists():
            return json.loads(self._meta_path.read_text())
        s = self.spec
        started = time.perf_counter()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rows = synthetic.write_generated(
            self._transactions_path, self._customers_path, s.customers, s.months, s.seed, s.start_month
        )
        seconds = time.perf_counter() - started
        with duckdb.connect() as connection:
            connection.execute("SET enable_progress_bar = false")
            (customers_in_log,) = connection.execute(
                "SELECT count(DISTINCT customer_id) FROM read_parquet(?)", [str(self._transactions_path)]
            ).fetchall()[0]
        meta = {
            "rows": rows,
            "customers_generated": pq.ParquetFile(self._customers_path).metadata.num_rows,
            "customers_in_log": int(customers_in_log),
            "generate_seconds": round(seconds, 3),
            "generated_in_blocks_of_customers": synthetic.BLOCK_CUSTOMERS,
            "file_mb": round(self._transactions_path.stat().st_size / 2**20, 1),
        }
        self._meta_path.write_text(json.dumps(meta, indent=2))
        return meta

    def facts(self) -> dict:
        """Generator arguments, log facts and, once computed, cleaned rows and feature customers."""
        facts = {"label": self.spec.label, "target_rows": self.spec.rows, **self.spec.synthetic_settings()}
        facts.update(self.generate())
        cleaned = self._path("cleaned")
        if cleaned.is_dir():
            facts["cleaned_rows"] = sum(pq.ParquetFile(path).metadata.num_rows for path in stages.month_files(cleaned))
        if self._path("basic").exists():
            facts["feature_customers"] = pq.ParquetFile(self._path("basic")).metadata.num_rows
        return facts

    def customers(self) -> pd.DataFrame:
        self.generate()
        return pd.read_parquet(self._customers_path)

    def generated_files(self) -> tuple[Path, Path]:
        """(transactions, customers) parquet files of the generated log."""
        self.generate()
        return self._transactions_path, self._customers_path

    def transactions(self) -> Path:
        """The log file (stages read it themselves: reading is part of ingest)."""
        self.generate()
        return self._transactions_path

    # ------------------------------------------------------------------ derived stage inputs

    def _path(self, name: str) -> Path:
        if name in stages.FOLDER_INPUTS:
            return self.inputs_dir / name
        suffix = "parquet" if name in stages.TABLE_INPUTS else "pkl"
        return self.inputs_dir / f"{name}.{suffix}"

    def load(self, name: str):
        """An input by name (see `stages.INPUT_RECIPES`), computed and stored on first use."""
        if name in ("transactions", "customers"):
            return getattr(self, name)()
        path = self._path(name)
        if not path.exists():
            self._forget_stale_inputs()
            recipe, needs = stages.INPUT_RECIPES[name]
            self.inputs_dir.mkdir(parents=True, exist_ok=True)
            if name in stages.FOLDER_INPUTS:  # month files, written into a folder renamed when complete
                partial = path.with_name(f".{path.name}.partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir()
                recipe(*(self.load(n) for n in needs), partial)
                partial.rename(path)
                return path
            value = recipe(*(self.load(n) for n in needs))
            tmp = path.with_suffix(".tmp")
            if name in stages.TABLE_INPUTS:
                value.to_parquet(tmp, index=False)
            else:
                tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            tmp.replace(path)
            return value
        if name in stages.FOLDER_INPUTS:
            return path
        if name in stages.TABLE_INPUTS:
            return pd.read_parquet(path)
        return pickle.loads(path.read_bytes())

    def _forget_stale_inputs(self) -> None:
        """Inputs computed by an older version of the code only take disk space."""
        for old in self.data_dir.glob("inputs_*"):
            if old != self.inputs_dir:
                shutil.rmtree(old, ignore_errors=True)

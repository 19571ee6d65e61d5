"""Hostile input: dirty but usable exports give a correct result with every row accounted
for; broken ones stop the run with one clear line and leave the last good outputs untouched.

One good run per module (a subprocess, so its exit code and stderr are the user's) reads an inbox of
files that each carry one kind of dirt (mixed date formats, placeholder ids, absurd values, latin-1, a
BOM with `;` and decimal commas, CDNOW-like ties), with an unreachable LLM endpoint and a method the
data cannot support; the cases assert on its outputs. Every failing case then runs
`segmentation-pipeline run` in-process on that good run's output folder and instance, mostly stopping
while the run is prepared, and asserts the exit code, the first line on stderr and that nothing the
good run published changed.
"""

import errno
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy

from segmentation_pipeline import cli, layout
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.conventions import FULL_REFRESH_JOB
from segmentation_pipeline.orchestration.partitions import (
    partition_range_tags,
    sync_months,
    transaction_months,
)
from segmentation_pipeline.orchestration.progress import user_error_message
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline_tests.conftest import materialize, write_config

CANONICAL = ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "amount", "product_id", "description", "country"]
COLUMNS = {name: name for name in CANONICAL}  # amount as well as quantity x unit_price: their agreement is checked
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04"]
# Small and quick: a few methods on one feature set, few refits; hdbscan cannot find two clusters of
# 10,000 customers in a few hundred, so it is skipped while kmeans and gmm run.
CHEAP = {
    "clustering": {
        "methods": {"kmeans": {}, "gmm": {}, "hdbscan": {"min_cluster_size": 10_000}},
        "feature_sets": ["behaviour"],
        "k": 3,
        "bootstraps": 2,
    },
    "leads": {"synthetic": {"leads": 300, "seed": 42, "personas_path": None}, "k": 3, "bootstraps": 2,
              "min_cluster_size": 10, "score_folds": 2},
    "persona_texts": {"embedded_count": 30, "k": 3, "stability_seeds": 1,
                      "embedding": {"backend": "tfidf", "model_path": None, "lsa_components": 10}},
}  # fmt: skip
PLACEHOLDERS = {"unknown": "unknown", "dash": "-", "n/a": "n/a", "null": "NULL", "none": "None", "zero": "0", "blank": "  "}
LATIN_TEXT = "Crème brûlée set £5"
ISO = "%Y-%m-%d %H:%M:%S"
DAY_FIRST = "%d/%m/%Y %H:%M"


# --------------------------------------------------------------------------------------- helpers


def _snapshot(output_dir: Path) -> dict[str, str]:
    """What readers see: the current set's id and the content hash of every file reachable through
    the stable paths (symlinks followed). The caches, runs' staging and the lock files are no output."""
    hidden = {layout.CACHE, layout.STAGING, layout.SETS}
    found = {"<current set>": OutputFolder(output_dir).current().set_id}
    for root, folders, files in os.walk(output_dir, followlinks=True):
        relative = Path(root).relative_to(output_dir)
        if relative == Path("."):
            folders[:] = [name for name in folders if name not in hidden]
        for name in files:
            if name.startswith(".segmentation_pipeline."):
                continue
            found[str(relative / name)] = hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()
    return found


def _staged(output_dir: Path) -> set[str]:
    staging = output_dir / layout.STAGING
    return {entry.name for entry in staging.iterdir()} if staging.is_dir() else set()


def _sets(output_dir: Path) -> list[str]:
    return [published.set_id for published in OutputFolder(output_dir).history()]


def _monthly(outputs: Path, name: str) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(part) for part in sorted((outputs / "tables" / name).glob("*.parquet")))


def _closed_port() -> int:
    """A local port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class GoodRun:
    folder: Path
    transactions: dict  # the good config's `transactions` section (its path: the clean export)
    frame: pd.DataFrame  # the clean export, as text cells
    meant: dict[str, pd.DataFrame]  # per inbox file: the rows it holds, with their real timestamps
    code: int
    stdout: str
    stderr: str

    @property
    def outputs(self) -> Path:
        return self.folder / "outputs"

    @property
    def home(self) -> Path:
        return self.folder / "dagster_home"

    @property
    def run_id(self) -> str:
        [line] = [line for line in self.stdout.splitlines() if line.startswith("run ")]
        return line.split()[1]

    def table(self, name: str, file: str | None = None) -> pd.DataFrame:
        """A monthly table, or its rows from one inbox file (every table keeps `source_file`)."""
        frame = _monthly(self.outputs, name)
        if file is None:
            return frame
        return frame[frame["source_file"] == file].sort_values("source_row")


def _clean_log() -> pd.DataFrame:
    """Synthetic transactions without the generator's own dirt, times to the minute, every cell text."""
    tx = synthetic.generate(customers=300, months=len(MONTHS), seed=7, start_month=MONTHS[0]).transactions
    tx = tx[tx["customer_id"].notna() & (tx["unit_price"] > 0) & (tx["quantity"] != 0)].copy()
    tx["timestamp"] = tx["timestamp"].dt.floor("min")
    tx["amount"] = (tx["quantity"] * tx["unit_price"]).round(2)
    return tx[CANONICAL].drop_duplicates().reset_index(drop=True)


def _as_text(frame: pd.DataFrame, stamps: list[str] | None = None) -> pd.DataFrame:
    text = frame.astype(str)
    text["timestamp"] = stamps if stamps is not None else frame["timestamp"].dt.strftime(ISO)
    return text


def _hazard_rows(template: pd.Series) -> pd.DataFrame:
    """One row per hazard, each with its own invoice id (valid in every other cell)."""
    future = (pd.Timestamp.now() + pd.Timedelta(days=40)).strftime(ISO)
    rows = {
        "FUTURE": {"timestamp": future},
        "EPOCH": {"timestamp": "1970-01-01 00:00:00"},
        "HUGE": {"unit_price": "1e300", "amount": "3e300", "quantity": "3"},
        "INF": {"unit_price": "inf", "amount": "inf"},
        **{f"PH-{name}": {"customer_id": value} for name, value in PLACEHOLDERS.items()},
        **{f"MISMATCH-{n}": {"quantity": "2", "unit_price": "10.00", "amount": str(30 + n)} for n in range(3)},
    }
    base = template.astype(str).to_dict()
    base["timestamp"] = template["timestamp"].strftime(ISO)
    return pd.DataFrame([{**base, "invoice_id": invoice, **changes} for invoice, changes in rows.items()])


def _write_inbox(inbox: Path, log: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The good run's log: one file per kind of dirt, customers split between them. Returns what each
    file means (its rows with real timestamps), by file name."""
    inbox.mkdir(parents=True)
    customers = sorted(log["customer_id"].unique())
    group = {customer: n % 6 for n, customer in enumerate(customers)}
    parts = {n: log[log["customer_id"].map(group) == n].reset_index(drop=True) for n in range(6)}
    meant = {}

    plain = parts[0]
    _as_text(pd.concat([plain, parts[5]])).to_csv(inbox / "01_export.csv", index=False)
    meant["01_export.csv"] = pd.concat([plain, parts[5]])

    mixed = parts[1]  # 60 % ISO, 40 % day-first `03/01/2025 12:30`
    stamps = [t.strftime(DAY_FIRST if n % 5 < 2 else ISO) for n, t in enumerate(mixed["timestamp"])]
    _as_text(mixed, stamps).to_csv(inbox / "02_mixed_dates.csv", index=False)
    meant["02_mixed_dates.csv"] = mixed

    three = parts[2]  # ISO, day-first and `3 Jan 2025 12:30`
    shapes = [lambda t: t.strftime(ISO), lambda t: t.strftime(DAY_FIRST), lambda t: f"{t.day} {t:%b %Y %H:%M}"]
    stamps = [shapes[n % 3](t) for n, t in enumerate(three["timestamp"])]
    _as_text(three, stamps).to_csv(inbox / "03_three_formats.csv", index=False)
    meant["03_three_formats.csv"] = three

    hazards = _hazard_rows(plain.iloc[0])
    hazards.to_csv(inbox / "04_bad_rows.csv", index=False)
    meant["04_bad_rows.csv"] = hazards

    latin = parts[3].assign(description=LATIN_TEXT)
    _as_text(latin).to_csv(inbox / "05_latin1.csv", index=False, encoding="latin-1")
    meant["05_latin1.csv"] = latin

    bom = parts[4]
    text = _as_text(bom).assign(**{c: bom[c].map(lambda v: f"{v:.2f}".replace(".", ",")) for c in ("unit_price", "amount")})
    text.to_csv(inbox / "06_bom_semicolon.csv", index=False, sep=";", encoding="utf-8-sig")
    meant["06_bom_semicolon.csv"] = bom

    # CDNOW-like: as many one-time buyers as there are customers, all alike (same moment, same basket).
    once = pd.DataFrame({
        "invoice_id": [f"ONCE-{n}" for n in range(len(customers))],
        "customer_id": [f"ONCE-{n:04d}" for n in range(len(customers))],
        "timestamp": pd.Timestamp(f"{MONTHS[1]}-15 10:00"),
        "quantity": 1, "unit_price": 10.0, "amount": 10.0,
        "product_id": plain["product_id"].iloc[0], "description": "Gift card", "country": "United Kingdom",
    })  # fmt: skip
    _as_text(once).to_csv(inbox / "07_one_time_buyers.csv", index=False)
    meant["07_one_time_buyers.csv"] = once

    typed = plain.groupby("customer_id").head(1).head(3).reset_index(drop=True)  # typed columns, not text
    typed["invoice_id"] = ["TYPED-1", "TYPED-2", "INF-TYPED"]
    typed.loc[2, ["unit_price", "amount"]] = float("inf")
    typed.to_parquet(inbox / "08_typed.parquet", index=False)
    meant["08_typed.parquet"] = typed

    # Unambiguous cells of both orders (13/02 day-first, 02/14 month-first): the ambiguous 03/02 is
    # rejected, not guessed.
    orders = plain.groupby("customer_id").head(1).head(5).reset_index(drop=True)
    orders["invoice_id"] = ["DAY-FIRST-1", "DAY-FIRST-2", "MONTH-FIRST", "AMBIGUOUS-1", "AMBIGUOUS-2"]
    stamps = ["13/02/2025 10:00", "14/03/2025 11:00", "02/14/2025 12:00", "03/02/2025 10:00", "04/03/2025 10:00"]
    orders["timestamp"] = pd.to_datetime(["2025-02-13 10:00", "2025-03-14 11:00", "2025-02-14 12:00", None, None])
    _as_text(orders, stamps).to_csv(inbox / "09_both_orders.csv", index=False)
    meant["09_both_orders.csv"] = orders
    return meant


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> GoodRun:
    """The last good run: its outputs are what bad runs must not touch."""
    folder = tmp_path_factory.mktemp("good")
    log = _clean_log()
    meant = _write_inbox(folder / "inbox", log)
    export = folder / "export.csv"  # what the bad cases start from: the clean part of the log
    shutil.copy(folder / "inbox" / "01_export.csv", export)
    transactions = {"source": "file", "path": str(export), "columns": COLUMNS}
    llm = {"enabled": True, "base_url": f"http://127.0.0.1:{_closed_port()}/v1", "model": "m",
           "api_key_env": "SEGMENTATION_TEST_NO_KEY", "timeout_seconds": 5, "temperature": 0.2}  # fmt: skip
    config = write_config(folder, transactions, llm=llm, **CHEAP)
    env = {**os.environ, "DAGSTER_HOME": str(folder / "dagster_home")}
    env.pop("SEGMENTATION_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "segmentation_pipeline.cli", "run", "--config", str(config)],
        check=False, cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    frame = pd.read_csv(export, dtype=str, keep_default_na=False)
    run = GoodRun(folder, transactions, frame, meant, done.returncode, done.stdout, done.stderr)
    assert run.code == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def instance(good_run):
    with dg.DagsterInstance.from_config(str(good_run.home)) as opened:
        yield opened


def _metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _run_log(instance: dg.DagsterInstance, run_id: str, level: str = "WARNING") -> list[str]:
    import logging

    wanted = logging.getLevelName(level)
    return [entry.user_message for entry in instance.all_logs(run_id) if entry.level == wanted]


# ------------------------------------------------------------------------ dirty but usable input


def test_the_dirty_log_runs_quietly(good_run):
    """Exit 0, nothing on stderr (no traceback, no scikit-learn or numpy warnings); the fallback
    encoding is a warning on stdout, said once although the file is read twice."""
    assert good_run.code == 0
    assert good_run.stderr == ""
    assert "Traceback" not in good_run.stdout and "Warning:" not in good_run.stdout
    note = "warning: '05_latin1.csv' is not valid utf-8 text; read it as cp1252"
    assert good_run.stdout.splitlines().count(note) == 1, good_run.stdout


@pytest.mark.parametrize("file", ["02_mixed_dates.csv", "03_three_formats.csv"])
def test_mixed_date_formats_are_parsed_per_row(good_run, file):
    """60 % ISO with 40 % day-first (`13/01/2025 12:30` decides the order), and a third, textual month."""
    raw = good_run.table("raw_transactions", file)
    meant = good_run.meant[file]
    assert len(raw) == len(meant)
    assert raw["timestamp"].tolist() == meant["timestamp"].tolist()
    assert raw["parse_errors"].isna().all()
    assert good_run.table("rejected_transactions", file).empty


def test_day_and_month_order_is_decided_per_column_and_ambiguous_cells_are_rejected(good_run):
    raw = good_run.table("raw_transactions", "09_both_orders.csv")
    meant = good_run.meant["09_both_orders.csv"]
    assert raw["timestamp"].tolist()[:3] == meant["timestamp"].tolist()[:3]
    rejected = good_run.table("rejected_transactions", "09_both_orders.csv")
    assert sorted(rejected["invoice_id"].astype(str)) == ["AMBIGUOUS-1", "AMBIGUOUS-2"]
    assert set(rejected["reject_reason"]) == {"unparseable_timestamp"}


@pytest.mark.parametrize(
    "invoice, reason",
    [
        ("FUTURE", "future_timestamp"),
        ("EPOCH", "implausible_timestamp"),
        *[(f"PH-{name}", "missing_customer") for name in PLACEHOLDERS],
        ("HUGE", "implausible_value"),
        ("INF", "unparseable_price"),  # text 'inf' is not a number the file can mean
        ("INF-TYPED", "implausible_value"),  # a float column holding inf (parquet)
    ],
)
def test_a_bad_row_is_rejected_with_its_reason(good_run, invoice, reason):
    rejected = _monthly(good_run.outputs, "rejected_transactions")
    [row] = rejected[rejected["invoice_id"] == invoice].itertuples()
    assert row.reject_reason == reason
    cleaned = _monthly(good_run.outputs, "cleaned_transactions")
    assert invoice not in set(cleaned["invoice_id"].astype(str))
    rfm = pd.read_parquet(good_run.outputs / layout.table("rfm"))
    assert not set(rfm["customer_id"].astype(str).str.strip().str.lower()) & {v.strip().lower() for v in PLACEHOLDERS.values()}
    assert rfm["monetary"].max() < 1e9  # no 1e300 or inf reached a customer


def test_rows_dated_in_the_future_or_1970_create_no_month(good_run, instance):
    assert instance.get_dynamic_partitions(transaction_months.name) == MONTHS
    manifest = OutputFolder(good_run.outputs).current().manifest
    assert sorted(manifest["assets"]["raw_transactions"]["partitions"]) == MONTHS
    assert sorted(p.stem for p in (good_run.outputs / "tables/raw_transactions").glob("*.parquet")) == MONTHS


def test_every_raw_row_is_cleaned_or_rejected(good_run):
    for file, meant in good_run.meant.items():
        raw, cleaned, rejected = (len(good_run.table(name, file)) for name in
                                  ("raw_transactions", "cleaned_transactions", "rejected_transactions"))  # fmt: skip
        assert raw == len(meant) == cleaned + rejected, (file, raw, cleaned, rejected)
    raw, cleaned, rejected = (len(_monthly(good_run.outputs, name)) for name in
                              ("raw_transactions", "cleaned_transactions", "rejected_transactions"))  # fmt: skip
    assert raw == cleaned + rejected == sum(len(meant) for meant in good_run.meant.values())


def test_amount_that_disagrees_with_quantity_times_price_is_reported_and_wins(good_run, instance):
    cleaned = good_run.table("cleaned_transactions", "04_bad_rows.csv")
    mismatched = cleaned[cleaned["invoice_id"].astype(str).str.startswith("MISMATCH")]
    assert sorted(mismatched["amount"]) == [30.0, 31.0, 32.0]  # the given amount, not 2 x 10.00
    assert _metadata(instance, "cleaned_transactions")["amount_disagreeing_rows"] == 3
    warnings = _metadata(instance, "rejected_transactions")["warnings"]
    assert any("3 of " in w and "differs from quantity x unit_price" in w for w in warnings), warnings
    assert any("differs from quantity x unit_price" in w for w in _run_log(instance, good_run.run_id))


def test_cdnow_like_ties_score_alike(good_run):
    """Half the customers bought once, at one moment, for the same amount: one score and segment for
    all of them, and equal values get equal scores everywhere."""
    rfm = pd.read_parquet(good_run.outputs / layout.table("rfm"))
    once = rfm[rfm["customer_id"].astype(str).str.startswith("ONCE-")]
    assert len(once) == len(good_run.meant["07_one_time_buyers.csv"])
    assert len(once[["r_score", "f_score", "m_score", "segment"]].drop_duplicates()) == 1
    for column, score in (("recency_days", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")):
        assert (rfm.groupby(column)[score].nunique() == 1).all(), column


def test_latin1_text_is_read_with_a_fallback_encoding(good_run):
    cleaned = good_run.table("cleaned_transactions", "05_latin1.csv")
    assert len(cleaned) == len(good_run.meant["05_latin1.csv"])
    assert (cleaned["description"].astype(str) == LATIN_TEXT).all()


def test_bom_semicolons_and_decimal_commas_are_read(good_run):
    raw = good_run.table("raw_transactions", "06_bom_semicolon.csv")
    meant = good_run.meant["06_bom_semicolon.csv"]
    assert not [c for c in raw.columns if str(c).startswith(("file:", "\ufeff"))]
    assert raw["invoice_id"].astype(str).tolist() == meant["invoice_id"].tolist()
    assert raw["unit_price"].round(2).tolist() == meant["unit_price"].round(2).tolist()
    assert raw["amount"].round(2).tolist() == meant["amount"].round(2).tolist()
    assert good_run.table("rejected_transactions", "06_bom_semicolon.csv").empty


def test_a_method_the_data_cannot_support_is_skipped_while_the_others_run(good_run, instance):
    assert "hdbscan" in _metadata(instance, "hdbscan")["skipped"]
    comparison = (good_run.outputs / layout.METHOD_COMPARISON_JSON).read_text()
    assert '"hdbscan"' in comparison.split('"skipped"')[1]
    methods = set(pd.read_parquet(good_run.outputs / layout.table("method_comparison"))["method"])
    assert methods == {"kmeans", "gmm"}
    report = (good_run.outputs / layout.REPORT).read_text()
    assert "hdbscan" in report and "min_cluster_size" in report


def test_an_unreachable_llm_endpoint_is_said_in_the_metadata_the_run_log_and_the_report(good_run, instance):
    status = _metadata(instance, "kmeans_profile")["llm_narrative_status"]
    assert status.startswith("failed: ") and "could not be reached" in status, status
    assert any("LLM narrative skipped" in m for m in _run_log(instance, good_run.run_id))
    report = (good_run.outputs / layout.REPORT).read_text()
    assert "could not be reached" in report
    assert not (good_run.outputs / layout.llm_narrative("kmeans")).exists()


# ------------------------------------------------------------------------------------ bad input


@dataclass
class Env:
    """What a bad case builds on: its own folder, the good run, and the names its first line may use."""

    tmp: Path
    good: GoodRun
    monkeypatch: pytest.MonkeyPatch
    names: dict
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    def file(self, name: str, write: Callable[[Path], object]) -> dict:
        path = self.tmp / name
        write(path)
        self.names["path"] = path
        return {"transactions": {"path": str(path)}}

    def frame_file(self, name: str, change: Callable[[pd.DataFrame], pd.DataFrame], **to_csv) -> dict:
        return self.file(name, lambda path: change(self.good.frame.copy()).to_csv(path, index=False, **to_csv))

    def clustering(self, **changes) -> dict:
        return {"clustering": {**CHEAP["clustering"], **changes}}


@dataclass(frozen=True)
class Bad:
    case: str
    make: Callable[[Env], dict]  # writes the bad input; returns config sections over the good run's
    first_line: str  # exact start of stderr's first line; {path}, {outputs}, {home}, {config} are filled in
    also: tuple[str, ...] = ()  # further text of stderr
    absent: tuple[str, ...] = ()  # text stderr must not hold
    stdout: tuple[str, ...] = ()  # lines of stdout (warnings)
    code: int = 2
    simulate: Callable[[Env], None] | None = None  # an OS failure, installed just before the run


def _set(frame: pd.DataFrame, **columns) -> pd.DataFrame:
    return frame.assign(**columns)


def _truncated_parquet(env: Env, path: Path) -> None:
    env.good.frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _mostly_not_dates(frame: pd.DataFrame) -> pd.DataFrame:
    valid = ["2025-01-03 10:00:00", "13/01/2025 12:30", "3 Jan 2025"]  # readable, so never cited as unreadable
    return _set(frame, timestamp=[valid[n % 10] if n % 10 < 3 else f"order {n}" for n in range(len(frame))])


def _too_many_rejected(frame: pd.DataFrame) -> pd.DataFrame:
    return _set(frame, timestamp=frame["timestamp"].where(frame.index % 4 != 0, "soon"))


def _under(path, folder: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(folder.resolve())
    except (TypeError, ValueError):
        return False


def _read_only(env: Env) -> None:
    """The output folder is on a read-only file system: creating anything in it fails with EROFS."""
    outputs, real_open, real_mkdir = env.names["outputs"], os.open, os.mkdir

    def refuse_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, outputs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def refuse_mkdir(path, *args, **kwargs):
        if _under(path, outputs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    env.monkeypatch.setattr(os, "open", refuse_open)
    env.monkeypatch.setattr(os, "mkdir", refuse_mkdir)


def _disk_full_on_write(env: Env) -> None:
    """The disk holding the outputs is full: files can be created, writing bytes into them fails."""
    outputs = env.names["outputs"]
    real_bytes, real_parquet = Path.write_bytes, pd.DataFrame.to_parquet

    def full(path):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def write_bytes(self, data):
        if _under(self, outputs):
            raise full(self)
        return real_bytes(self, data)

    def to_parquet(self, path=None, *args, **kwargs):
        if isinstance(path, (str, Path)) and _under(path, outputs):
            raise full(path)
        return real_parquet(self, path, *args, **kwargs)

    env.monkeypatch.setattr(Path, "write_bytes", write_bytes)
    env.monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)


def _instance_disk_full(env: Env) -> None:
    """The disk under DAGSTER_HOME is full: SQLite refuses every write to the instance's databases."""
    home = str(env.names["home"])

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if home in str(conn.engine.url) and statement.lstrip().upper().startswith(("INSERT", "UPDATE", "CREATE")):
            raise sqlite3.OperationalError("database or disk is full")

    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):  # a new instance's dagster.yaml
        if _under(self, env.names["home"]):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, *args, **kwargs)

    env.monkeypatch.setattr(Path, "write_text", write_text)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", refuse)
    env.cleanups.append(lambda: sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", refuse))


def _fresh_home(env: Env) -> dict:
    env.names["home"] = env.tmp / "new_dagster_home"
    return {}


def _home_is_a_file(env: Env) -> dict:
    env.names["home"] = env.tmp / "dagster_home"
    env.names["home"].write_text("not a folder")
    return {}


def _output_dir_is_a_file(env: Env) -> dict:
    env.names["outputs"] = env.tmp / "outputs.txt"
    env.names["outputs"].write_text("not a folder")
    return {"output_dir": str(env.names["outputs"])}


def _changed_export(env: Env) -> dict:
    """The good export with one more line: the same data, but months not yet cached."""
    return env.file("export_again.csv", lambda path: path.write_bytes(Path(env.good.transactions["path"]).read_bytes() + b"\n"))


COLUMN = "Column '{column}' (mapped to {column}) in '{{path}}'"
BAD = [
    # --- the file as a whole
    Bad("zero_bytes", lambda e: e.file("empty.csv", lambda p: p.write_bytes(b"")),
        "error: Transaction file '{path}' is empty (0 bytes)."),
    Bad("header_only", lambda e: e.frame_file("header.csv", lambda f: f.head(0)),
        "error: Transaction file '{path}' has no data rows, only a header or nothing at all."),
    Bad("binary_junk", lambda e: e.file("junk.csv", lambda p: p.write_bytes(bytes(range(256)) * 40)),
        "error: Transaction file '{path}' is binary, not delimited text (it contains NUL bytes)."),
    Bad("csv_named_xlsx", lambda e: e.file("export.xlsx", lambda p: shutil.copy(e.good.transactions["path"], p)),
        "error: Transaction file '{path}' cannot be read as a spreadsheet"),
    Bad("path_is_a_directory", lambda e: e.file("folder.csv", lambda p: p.mkdir()),
        "error: Transaction file '{path}' does not exist or is not a file."),
    Bad("path_does_not_exist", lambda e: e.file("gone.csv", lambda p: None),
        "error: Transaction file '{path}' does not exist or is not a file."),
    Bad("truncated_parquet", lambda e: e.file("truncated.parquet", lambda p: _truncated_parquet(e, p)),
        "error: Transaction file '{path}' cannot be read as parquet (corrupt or truncated?)"),
    Bad("unknown_read_options_key", lambda e: {"transactions": {"read_options": {"separator": ";"}}},
        "error: Transaction file '{path}': read_options key 'separator' is not an option of the delimited-text "
        "reader (did you mean 'sep'?)."),
    Bad("unknown_encoding", lambda e: {"transactions": {"encoding": "utf-9"}},
        "error: Encoding 'utf-9' given for '{path}' is not a known text encoding."),
    # --- columns
    Bad("missing_mapped_column", lambda e: e.frame_file("no_price.csv", lambda f: f.drop(columns=["unit_price"])),
        "error: " + COLUMN.format(column="unit_price").replace(" in '{path}'", " is not in '{path}'") + "; its columns are:"),
    Bad("misspelt_column_did_you_mean", lambda e: e.frame_file("renamed.csv", lambda f: f.rename(columns={"unit_price": "Unit Price"})),
        "error: Column 'unit_price' (mapped to unit_price) is not in '{path}' (did you mean 'Unit Price'?)"),
    Bad("latin1_file_with_a_missing_column",
        lambda e: e.frame_file("latin.csv", lambda f: _set(f, description=LATIN_TEXT).drop(columns=["country"]), encoding="latin-1"),
        "error: Column 'country' (mapped to country) is not in '{path}'",
        stdout=("warning: 'latin.csv' is not valid utf-8 text; read it as cp1252",)),  # not first on stderr
    Bad("quantity_not_numbers", lambda e: e.frame_file("lots.csv", lambda f: _set(f, quantity="lots")),
        "error: " + COLUMN.format(column="quantity") + " does not hold numbers", ("'lots'",)),
    Bad("single_customer", lambda e: e.frame_file("one.csv", lambda f: _set(f, customer_id="C1")),
        "error: " + COLUMN.format(column="customer_id") + " has 1 distinct customer ('C1'); segmentation needs at least 2"),
    Bad("timestamps_mostly_not_dates", lambda e: e.frame_file("not_dates.csv", _mostly_not_dates),
        "error: " + COLUMN.format(column="timestamp") + " does not hold dates and times: ", ("'order 3'",),
        absent=("2025-01-03", "13/01/2025", "3 Jan 2025")),  # cites only cells it cannot read
    Bad("timestamps_all_empty", lambda e: e.frame_file("no_dates.csv", lambda f: _set(f, timestamp="")),
        "error: " + COLUMN.format(column="timestamp") + " is empty: none of its"),
    Bad("every_row_dated_1970", lambda e: e.frame_file("epoch.csv", lambda f: _set(f, timestamp="1970-01-01 00:00:00")),
        "error: {path}: column `timestamp`: no timestamp between 1990-01-01 and the run's date"),
    Bad("too_many_rows_rejected", lambda e: e.frame_file("soon.csv", _too_many_rejected),
        "  check rejected_transactions:rejected_share_within_limit failed: 2",
        ("more than max_rejected_share 5.0%. Top reasons: unparseable_timestamp", "e.g. timestamp='soon'"), code=1),
    # --- configuration, checked at load
    Bad("gmm_covariance_type_bogus", lambda e: e.clustering(methods={"gmm": {"gmm_covariance_type": "bogus"}}),
        "error: {config}: clustering.methods.gmm.gmm_covariance_type: must be one of full, tied, diag, spherical (got 'bogus')"),
    Bad("unknown_feature_name", lambda e: e.clustering(features=["recency", "frequency"]),
        "error: {config}: clustering.features: 'recency': not a numeric column of the customer feature table"),
    Bad("no_methods", lambda e: e.clustering(methods=[]),
        "error: {config}: clustering.methods: names the methods to run, so it cannot be empty"),
    # --- folders the run writes
    Bad("output_dir_is_a_file", _output_dir_is_a_file, "error: {outputs}: output_dir is a file, not a folder"),
    Bad("output_dir_read_only", lambda e: {}, "error: {outputs}: output_dir cannot be written: Read-only file system",
        simulate=_read_only),
    Bad("disk_full_while_preparing", _changed_export,
        "error: {outputs}/cache/months_", (".json: cannot write: No space left on device",), simulate=_disk_full_on_write),
    Bad("disk_full_during_the_run", lambda e: {}, "  raw_leads failed: {outputs}/.staging/", (": cannot write: No space left on device",),
        code=1, simulate=_disk_full_on_write),
    Bad("dagster_home_is_a_file", _home_is_a_file, "error: {home}: DAGSTER_HOME is a file, not a folder"),
    Bad("dagster_instance_disk_full", lambda e: {}, "error: {home}: the Dagster instance cannot record the run: disk full",
        simulate=_instance_disk_full),
    Bad("new_dagster_instance_disk_full", _fresh_home,
        "error: {home}: the Dagster instance cannot record the run: disk full", simulate=_instance_disk_full),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD, ids=[bad.case for bad in BAD])
def test_bad_input_fails_with_one_clear_line_and_keeps_the_last_good_outputs(good_run, bad, tmp_path, monkeypatch, capsys):
    outputs = good_run.outputs
    before, sets_before, staged_before = _snapshot(outputs), _sets(outputs), _staged(outputs)
    env = Env(tmp_path, good_run, monkeypatch, {"outputs": outputs, "home": good_run.home, "path": good_run.transactions["path"]})
    sections = bad.make(env)
    transactions = {**good_run.transactions, **sections.pop("transactions", {})}
    sections = {**CHEAP, "output_dir": str(outputs), **sections}
    env.names["config"] = write_config(tmp_path / "config", transactions, **sections)
    monkeypatch.setenv("DAGSTER_HOME", str(env.names["home"]))
    if bad.simulate:
        bad.simulate(env)
    try:
        code = cli.main(["run", "--config", str(env.names["config"])])
    finally:
        for cleanup in env.cleanups:
            cleanup()
        monkeypatch.undo()
    out, err = capsys.readouterr()
    names = {key: str(value) for key, value in env.names.items()}
    assert code == bad.code, out + err
    assert "Traceback" not in out + err, err
    assert err.strip(), out
    first = err.splitlines()[0]
    assert first.startswith(bad.first_line.format(**names)), (first, bad.first_line.format(**names))
    for text in bad.also:
        assert text.format(**names) in err, (text, err)
    for text in bad.absent:
        assert text not in err, (text, err)
    for line in bad.stdout:
        assert out.splitlines().count(line) == 1, (line, out)
    assert err.count(first.strip()) == 1, err  # printed once
    assert "blocking asset check" not in err  # Dagster's wrapper of a failed check is no second message
    assert _snapshot(outputs) == before
    assert _sets(outputs) == sets_before  # no set was published
    # Stopped while being prepared: nothing staged. Failed while running: its staging folder is left
    # for the next run to remove, and no reader sees it.
    assert len(_staged(outputs) - staged_before) == (0 if bad.code == 2 else 1)


def test_file_broken_after_its_months_were_registered_fails_ingest_and_publishes_nothing(good_run, tmp_path):
    """A run launched on months registered earlier (a schedule tick, the UI) whose file was replaced by a
    broken one since: the ingest step fails with the same message and the published set is untouched."""
    outputs = good_run.outputs
    before, sets_before = _snapshot(outputs), _sets(outputs)
    months = sorted(OutputFolder(outputs).current().manifest["assets"]["raw_transactions"]["partitions"])
    path = tmp_path / "wrong_types.csv"
    good_run.frame.assign(quantity="lots").to_csv(path, index=False)
    config = write_config(tmp_path, {**good_run.transactions, "path": str(path)}, output_dir=str(outputs), **CHEAP)
    instance = dg.DagsterInstance.ephemeral()
    sync_months(instance, months)
    job = build_definitions(config).resolve_job_def(FULL_REFRESH_JOB)
    result = job.execute_in_process(instance=instance, tags=partition_range_tags(months), raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "raw_transactions"
    message = user_error_message(failure.step_failure_data.error)
    for fragment in ("wrong_types.csv", "quantity", "numbers"):
        assert fragment in message, message
    assert _snapshot(outputs) == before
    assert _sets(outputs) == sets_before


def test_non_utf8_csv_is_ingested_with_a_fallback_encoding(good_run, tmp_path):
    path = tmp_path / "latin.csv"
    good_run.frame.assign(description=LATIN_TEXT).to_csv(path, index=False, encoding="cp1252")
    config = write_config(tmp_path, {**good_run.transactions, "path": str(path)}, **CHEAP)
    result = materialize(config, dg.DagsterInstance.ephemeral(), ["raw_transactions"])
    assert result.success
    raw = _monthly(tmp_path / "outputs", "raw_transactions")
    assert len(raw) == len(good_run.frame)
    assert (raw["description"] == LATIN_TEXT).all()

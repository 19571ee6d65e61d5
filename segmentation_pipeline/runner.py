"""Run the asset graph — every asset over every month, or a range of months — or only its checks, as one
Dagster run recorded in the instance.

`dagster asset materialize --select '*'` refuses graphs that mix partitioned and unpartitioned
assets; one run tagged with a partition range does not. The run executes in this process unless the
config selects another executor (multiprocess, k8s, celery), which then runs the steps.

Runs are serialized: a run holds an exclusive lock on the output folder and on the instance folder
for its whole duration, so a second run started meanwhile waits instead of interleaving its writes
(every file is also replaced atomically, so readers never see a half-written table). Holding the
lock also proves that no other run of this machine is alive, so runs a killed process left
"started" are marked failed and its temporary files removed.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import sqlalchemy

from segmentation_pipeline.config import active_config
from segmentation_pipeline.errors import ConfigError

FULL_REFRESH_JOB = "full_refresh"
CHECKS_JOB = "asset_checks"
LAUNCHED_BY_TAG = "segmentation_pipeline/launched_by"
HOST_TAG = "segmentation_pipeline/host"
LOCK_NAME = ".segmentation_pipeline.lock"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# Written to $DAGSTER_HOME/dagster.yaml when missing, so `dagster dev` and the CLI share these settings.
DEFAULT_INSTANCE_YAML = """\
# Dagster instance of segmentation-pipeline: written once when missing, yours to edit afterwards.
# Run history, event logs and schedule/sensor state are SQLite files in this folder.
# For PostgreSQL storage see deploy/dagster.yaml.
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    # Every run writes the same output folder: runs launched from the UI, schedules, sensors and
    # backfills wait in the queue and start one at a time (CLI runs count as in progress too).
    max_concurrent_runs: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
"""


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    seconds: float
    assets: int = 0
    checks_passed: int = 0
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def user_error_message(error) -> str:
    """The innermost cause of a step failure: the user's error, not Dagster's wrapper."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = error.message.strip()
    cls_name = getattr(error, "cls_name", None)
    return re.sub(rf"^[\w.]*{re.escape(cls_name)}: ", "", message) if cls_name else message


class _Progress:
    """Event listener printing one line per asset as its step completes, and collecting check results."""

    def __init__(self, outcome: RunOutcome, emit: Callable[[str], None]):
        self.outcome = outcome
        self.emit = emit
        self.started: dict[str, float] = {}
        self.rows: dict[str, dict[str, int | None]] = defaultdict(dict)

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind, step = event.event_type_value, event.step_key
        if kind == "STEP_START":
            self.started[step] = entry.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            self.rows[step][materialization.asset_key.to_user_string()] = rows.value if rows else None
        elif kind == "STEP_SUCCESS":
            seconds = entry.timestamp - self.started.get(step, entry.timestamp)
            for asset, rows in self.rows.pop(step, {}).items():
                self.outcome.assets += 1
                count = f"{rows:>10,} rows" if rows is not None else " " * 15
                self.emit(f"  {asset:<34} {count}  {seconds:6.2f}s")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                self.outcome.checks_passed += 1
                return
            text = f"check {name} failed: {evaluation.description}"
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                self.outcome.failed_checks.append(text)
            else:
                self.outcome.warnings.append(text)
            self.emit(f"  ! {text}")
        elif kind == "STEP_FAILURE":
            message = user_error_message(event.event_specific_data.error)
            self.outcome.errors.append(f"{step} failed: {message}")
            self.emit(f"  x {step} failed: {message}")


class _SqliteWithoutFsyncPerEvent:
    """Connect hook for the instance's SQLite files: synchronous=NORMAL, and one connection kept open
    per database file for the run.

    Dagster opens and closes a connection per operation; closing the last connection to a WAL database
    checkpoints it with an fsync, i.e. one disk flush per event (seconds per run). With a connection
    held open, WAL commits are durable against a crashed process without waiting on the disk, and the
    usual automatic checkpoints still run.
    """

    def __init__(self) -> None:
        self.keepers: dict[str, sqlite3.Connection] = {}

    def __call__(self, dbapi_connection, _record) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        path = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
        if path and path not in self.keepers:
            self.keepers[path] = sqlite3.connect(path, check_same_thread=False)

    @contextmanager
    def installed(self) -> Iterator[None]:
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", self)
        try:
            yield
        finally:
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", self)
            for connection in self.keepers.values():
                connection.close()
            self.keepers.clear()


def ensure_instance_home(home: Path) -> Path:
    """Create the instance folder and its default dagster.yaml (never overwriting the user's)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    return home


@contextmanager
def _folder_lock(folder: Path, run_id: str, emit: Callable[[str], None]) -> Iterator[None]:
    """Exclusive lock on `folder` for one run; waits (saying for whom) while another run holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another run"
            emit(f"waiting: {holder} is using {folder}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"run {run_id} (pid {os.getpid()} on {socket.gethostname()})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fail_abandoned_runs(instance: dg.DagsterInstance, emit: Callable[[str], None]) -> None:
    """Runs this machine's CLI started that are still 'in progress' belong to a dead process (we hold the lock)."""
    filters = dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        tags={LAUNCHED_BY_TAG: "cli", HOST_TAG: socket.gethostname()},
    )
    for run in instance.get_runs(filters=filters):
        instance.report_run_failed(run, message="The process running it ended before it finished (killed or crashed).")
        emit(f"marked run {run.run_id} failed: its process ended before it finished")


def _remove_stale_temp_files(output_dir: Path) -> None:
    """Temporary files of interrupted atomic writes (`.<name>.<random>.tmp`); no writer is alive."""
    if output_dir.is_dir():
        for temp in output_dir.rglob(".*.tmp"):
            temp.unlink(missing_ok=True)


# Module-level functions, not lambdas: the other executors rebuild the job from them in their processes.
def _full_refresh_job() -> dg.JobDefinition:
    from segmentation_pipeline.definitions import defs

    return defs().resolve_job_def(FULL_REFRESH_JOB)


def _asset_checks_job() -> dg.JobDefinition:
    from segmentation_pipeline.definitions import defs

    return defs().resolve_job_def(CHECKS_JOB)


def months_between(first: str | None, last: str | None) -> list[str]:
    """Partition keys of the months first..last ('YYYY-MM', inclusive; None = the log's first/last month)."""
    from segmentation_pipeline.defs.partitions import monthly_partitions
    from segmentation_pipeline.defs.resources import month_of_partition_key

    keys = monthly_partitions.get_partition_keys()
    months = [month_of_partition_key(key) for key in keys]
    first, last = first or months[0], last or months[-1]
    for label, month in (("--from", first), ("--to", last)):
        if month not in months:
            raise ConfigError(f"{label} {month}: not a month of the transaction log ({months[0]} .. {months[-1]})")
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    return [key for key, month in zip(keys, months, strict=True) if first <= month <= last]


def _execute(
    job: Callable[[], dg.JobDefinition],
    instance: dg.DagsterInstance | None,
    emit: Callable[[str], None],
    tags: dict[str, str],
) -> RunOutcome:
    config = active_config()
    output_dir = config.output_path()
    outcome = RunOutcome(run_id=str(uuid.uuid4()), success=False, seconds=0.0)
    progress = _Progress(outcome, emit)
    tags = {**tags, LAUNCHED_BY_TAG: "cli", HOST_TAG: socket.gethostname()}
    if instance is None and not os.environ.get("DAGSTER_HOME"):
        raise ConfigError("DAGSTER_HOME is not set: it names the folder of the run history (the CLI sets it)")
    home = instance.root_directory if instance else os.environ["DAGSTER_HOME"]
    with ExitStack() as stack:
        # Locked before the instance opens: two processes creating a new instance's SQLite tables at
        # the same moment would both stamp its schema version and leave it unreadable.
        for folder in dict.fromkeys([output_dir, Path(home)]):
            stack.enter_context(_folder_lock(folder, outcome.run_id, emit))
        instance = instance or stack.enter_context(dg.DagsterInstance.get())
        stack.enter_context(_SqliteWithoutFsyncPerEvent().installed())
        _fail_abandoned_runs(instance, emit)
        _remove_stale_temp_files(output_dir)
        started = time.perf_counter()
        if config.executor.type == "in_process":
            instance.add_event_listener(outcome.run_id, progress)
            result = job().execute_in_process(
                run_config=QUIET, instance=instance, run_id=outcome.run_id, tags=tags, raise_on_error=False
            )
        else:  # the executor runs the steps elsewhere: report from the recorded events afterwards
            result = dg.execute_job(dg.reconstructable(job), instance, run_config=QUIET, tags=tags)
            outcome.run_id = result.run_id
            for entry in instance.all_logs(result.run_id):
                progress(entry)
        outcome.seconds = time.perf_counter() - started
    outcome.success = result.success and not outcome.failed_checks and not outcome.errors
    return outcome


def run_everything(
    instance: dg.DagsterInstance | None = None,
    emit: Callable[[str], None] = print,
    months: tuple[str | None, str | None] = (None, None),
) -> RunOutcome:
    """Materialize the full graph into `instance` (default: $DAGSTER_HOME): the month partitions in
    `months` (first, last; default all) and every unpartitioned asset, which reads all months."""
    from segmentation_pipeline.defs.partitions import partition_range_tags

    return _execute(_full_refresh_job, instance, emit, partition_range_tags(months_between(*months)))


def run_checks(instance: dg.DagsterInstance | None = None, emit: Callable[[str], None] = print) -> RunOutcome:
    """Run every asset check against the stored tables, materializing nothing."""
    return _execute(_asset_checks_job, instance, emit, {})

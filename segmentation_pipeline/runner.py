"""Run the whole asset graph — every asset, every month — as one in-process Dagster run.

`dagster asset materialize --select '*'` refuses graphs that mix partitioned and unpartitioned
assets; one run tagged with the full partition range does not, and records history in the instance.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy

FULL_REFRESH_JOB = "full_refresh"


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
    prefix = f"{error.cls_name}: " if getattr(error, "cls_name", None) else ""
    return message[len(prefix):] if prefix and message.startswith(prefix) else message


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


def _sqlite_commits_without_fsync(dbapi_connection, _record) -> None:
    """WAL + synchronous=NORMAL: history survives a crashed process, commits stop waiting on the disk."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def run_everything(
    instance: dg.DagsterInstance | None = None, emit: Callable[[str], None] = print
) -> RunOutcome:
    """Materialize the full graph over all month partitions into `instance` (default: $DAGSTER_HOME)."""
    from segmentation_pipeline.definitions import defs
    from segmentation_pipeline.defs.partitions import monthly_partitions

    if not sqlalchemy.event.contains(sqlalchemy.engine.Engine, "connect", _sqlite_commits_without_fsync):
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _sqlite_commits_without_fsync)
    job = defs().resolve_job_def(FULL_REFRESH_JOB)
    instance = instance or dg.DagsterInstance.get()
    keys = monthly_partitions.get_partition_keys()
    tags = {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
    outcome = RunOutcome(run_id=str(uuid.uuid4()), success=False, seconds=0.0)
    instance.add_event_listener(outcome.run_id, _Progress(outcome, emit))
    started = time.perf_counter()
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    result = job.execute_in_process(
        run_config=quiet, instance=instance, run_id=outcome.run_id, tags=tags, raise_on_error=False
    )
    outcome.seconds = time.perf_counter() - started
    outcome.success = result.success and not outcome.failed_checks and not outcome.errors
    return outcome

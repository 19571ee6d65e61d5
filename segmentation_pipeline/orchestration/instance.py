"""The Dagster instance the CLI and `dagster dev` share: where it lives, its default settings, and
runs that a killed process left "started"."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from segmentation_pipeline.orchestration.conventions import HOST_TAG, LAUNCHED_BY_TAG
from segmentation_pipeline.paths import DAGSTER_HOME_NAME

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
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def instance_home() -> Path:
    """$DAGSTER_HOME, else `.dagster_home` in the current directory (never Dagster's temporary
    folder, which is deleted with the process and the history with it)."""
    return Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / DAGSTER_HOME_NAME).expanduser().resolve()


def ensure_instance_home(home: Path) -> Path:
    """Create the instance folder and its default dagster.yaml (never overwriting the user's)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    return home


def cli_run_tags() -> dict[str, str]:
    return {LAUNCHED_BY_TAG: "cli", HOST_TAG: socket.gethostname()}


def fail_abandoned_runs(instance: dg.DagsterInstance, emit: Callable[[str], None]) -> None:
    """Runs this machine's CLI started that are still 'in progress' belong to a dead process: the
    caller holds the output folder's lock, so no other CLI run of this machine is alive."""
    filters = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED], tags=cli_run_tags())
    for run in instance.get_runs(filters=filters):
        instance.report_run_failed(run, message="The process running it ended before it finished (killed or crashed).")
        emit(f"marked run {run.run_id} failed: its process ended before it finished")


def live_run_ids(instance: dg.DagsterInstance) -> set[str]:
    """Runs queued or in progress: their staged outputs must not be cleaned up."""
    return {run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))}

"""Run the whole graph (every month, or a range of months) or only its checks, as one Dagster run
recorded in the instance, from the command line.

`dagster asset materialize --select '*'` refuses graphs that mix partitioned and unpartitioned
assets; one run tagged with a partition range does not. Before the run, the log's months are
registered as partitions (reading the data here, never when the definitions load), the output
folder is locked (runs are serialized), runs a killed process left "started" are marked failed and
their staged outputs removed. The run's outputs are published as a whole by its last step.
"""

from __future__ import annotations

import errno
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.config import PipelineConfig, load_config
from segmentation_pipeline.errors import ConfigError, StorageError
from segmentation_pipeline.orchestration.conventions import (
    CHECKS_JOB,
    FULL_REFRESH_JOB,
    TRIGGER_TAG,
)
from segmentation_pipeline.orchestration.instance import (
    cli_run_tags,
    ensure_instance_home,
    fail_abandoned_runs,
    instance_home,
    live_run_ids,
)
from segmentation_pipeline.orchestration.locking import folder_lock
from segmentation_pipeline.orchestration.memory import release_after_steps
from segmentation_pipeline.orchestration.partitions import (
    partition_range_tags,
    sync_months,
    transaction_months,
)
from segmentation_pipeline.orchestration.progress import Progress, RunOutcome
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.retail.transactions import data_months, log_in_force
from segmentation_pipeline.storage import writable_folder

DEFINITIONS_MODULE = "segmentation_pipeline.definitions"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def months_between(registered: list[str], first: str | None, last: str | None) -> list[str]:
    """The registered months first..last ('YYYY-MM', inclusive; None = the log's first/last month)."""
    if not registered:
        raise ConfigError("the transaction log has no month with transactions")
    first, last = first or registered[0], last or registered[-1]
    for label, month in (("--from", first), ("--to", last)):
        if month not in registered:
            raise ConfigError(f"{label} {month}: not a month of the transaction log ({registered[0]} .. {registered[-1]})")
    if first > last:
        raise ConfigError(f"--from {first} is after --to {last}")
    return [month for month in registered if first <= month <= last]


def run_graph(
    config_path: Path,
    months: tuple[str | None, str | None] = (None, None),
    emit: Callable[[str], None] = print,
    instance: dg.DagsterInstance | None = None,
    trigger: str = "cli run",
) -> RunOutcome:
    """Materialize the full graph: the month partitions in `months` (first, last; default all) and
    every unpartitioned asset, which reads all months; published as a whole when it succeeds."""

    def tags(config: PipelineConfig, instance: dg.DagsterInstance) -> dict[str, str]:
        log = log_in_force(config)
        sync_months(instance, data_months(log, config.output_path() / layout.CACHE, pd.Timestamp.now(tz="UTC")))
        registered = instance.get_dynamic_partitions(transaction_months.name)
        return {**partition_range_tags(months_between(registered, *months)), TRIGGER_TAG: trigger}

    return _execute(config_path, FULL_REFRESH_JOB, tags, emit, instance)


def run_checks(
    config_path: Path, emit: Callable[[str], None] = print, instance: dg.DagsterInstance | None = None
) -> RunOutcome:
    """Run every asset check against the published outputs, materializing nothing."""
    return _execute(config_path, CHECKS_JOB, lambda config, instance: {TRIGGER_TAG: "cli check"}, emit, instance)


def _execute(
    config_path: Path,
    job_name: str,
    tags_for: Callable[[PipelineConfig, dg.DagsterInstance], dict[str, str]],
    emit: Callable[[str], None],
    instance: dg.DagsterInstance | None,
) -> RunOutcome:
    config = load_config(config_path)
    outcome = RunOutcome(run_id=str(uuid.uuid4()), success=False, seconds=0.0)
    writable_folder(config.output_path(), "output_dir")
    home = Path(instance.root_directory) if instance else instance_home()
    writable_folder(home, "DAGSTER_HOME")
    try:
        ensure_instance_home(home)
        with ExitStack() as stack:
            # Locked before the instance opens: two processes creating a new instance's SQLite tables at
            # the same moment would both stamp its schema version and leave it unreadable.
            for folder in dict.fromkeys([config.output_path(), home]):
                stack.enter_context(folder_lock(folder, f"run {outcome.run_id}", emit))
            instance = instance or stack.enter_context(dg.DagsterInstance.from_config(str(home)))
            fail_abandoned_runs(instance, emit)
            OutputFolder(config.output_path(), config.publication.keep_sets).clean(live_run_ids(instance))
            tags = {**tags_for(config, instance), **cli_run_tags()}
            started = time.perf_counter()
            result = _launch(config, config_path, job_name, instance, outcome, tags, emit)
            outcome.seconds = time.perf_counter() - started
    except StorageError:
        raise  # already names the path it could not write
    except Exception as exc:
        # The instance could not be created, register the months or record the run: say where, not a
        # traceback (a new instance's tables, its dagster.yaml, and every run write to it).
        if _disk_full(exc):
            raise StorageError(errno.ENOSPC, f"{home}: the Dagster instance cannot record the run: disk full") from None
        raise
    outcome.success = result.success and not outcome.failed_checks and not outcome.errors
    return outcome


def _execute_in_this_process(job: dg.JobDefinition, instance: dg.DagsterInstance, run_id: str, tags: dict[str, str]):
    """`job.execute_in_process(...)`, except that step outputs are not kept. `execute_in_process` holds
    every step's return value in memory until the run ends, so that tests can ask for them: every
    customer table and clustering result of the run at once, 15 GB on a 10^8-line log. The outputs are
    stored by the IO managers and read back from there; nothing here needs them. This uses the two
    Dagster internals `execute_in_process` is built on (the Dagster release is pinned)."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process

    return core_execute_in_process(
        run_config=QUIET,
        job=InMemoryJob(job_def=job.as_ephemeral_job(resource_defs={}, input_values={})),
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=False,
        run_tags=tags,
        run_id=run_id,
    )


def _disk_full(exc: BaseException | None) -> bool:
    """Whether a failure (or one of its causes) is a full disk, as SQLite or the OS reports it."""
    while exc is not None:
        if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _launch(
    config: PipelineConfig,
    config_path: Path,
    job_name: str,
    instance: dg.DagsterInstance,
    outcome: RunOutcome,
    tags: dict[str, str],
    emit: Callable[[str], None],
):
    """In this process (default), or through the configured executor, which runs the steps in other
    processes that rebuild the job from `definitions.job_for(config_path, job_name)`."""
    progress = Progress(outcome, emit)
    if config.executor.type == "in_process":
        from segmentation_pipeline.definitions import build_definitions

        job = build_definitions(config_path).resolve_job_def(job_name)
        instance.add_event_listener(outcome.run_id, progress)
        instance.add_event_listener(outcome.run_id, release_after_steps)
        return _execute_in_this_process(job, instance, outcome.run_id, tags)
    job = dg.build_reconstructable_job(DEFINITIONS_MODULE, "job_for", reconstructable_args=(str(config_path), job_name))
    result = dg.execute_job(job, instance, run_config=QUIET, tags=tags)
    outcome.run_id = result.run_id
    for entry in instance.all_logs(result.run_id):
        progress(entry)
    return result

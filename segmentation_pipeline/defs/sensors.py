"""Sensors: the log's months as partitions, the inbox (a dropped export is the upload), and declarative
refresh of downstream assets.

`transaction_months` only registers partitions (it launches nothing), so it runs by default: the UI
then always offers the months the data has. The inbox and automation sensors start STOPPED unless the
config's `automation` section says running.
"""


import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from segmentation_pipeline.config import AutomationSettings
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.orchestration.conventions import (
    FULL_REFRESH_JOB,
    INBOX_TAG,
    TRIGGER_TAG,
)
from segmentation_pipeline.orchestration.partitions import (
    log_months,
    partition_range_tags,
    sensor_month_requests,
)
from segmentation_pipeline.orchestration.resources import PipelineSettings
from segmentation_pipeline.retail.transactions import inbox_files, log_in_force

# A file written less than this long ago may still be being copied: it is picked up on a later tick.
SETTLE_SECONDS = 5.0
MONTHS_POLL_SECONDS = 60


def _status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fingerprints(files: list[Path], known: dict[str, dict]) -> dict[str, dict]:
    """Content hash, size and mtime per file; a file whose size and mtime are unchanged is not re-read."""
    result = {}
    for path in files:
        stat = path.stat()
        previous = known.get(path.name, {})
        unchanged = previous.get("size") == stat.st_size and previous.get("mtime_ns") == stat.st_mtime_ns
        sha = previous["sha256"] if unchanged else _sha256(path)
        result[path.name] = {"sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return result


def _describe_changes(before: dict[str, dict], after: dict[str, dict]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(n for n in set(before) & set(after) if before[n]["sha256"] != after[n]["sha256"])
    parts = [f"{label}: {', '.join(names)}" for label, names in (("new", added), ("changed", changed), ("removed", removed)) if names]
    return "; ".join(parts)


@dg.sensor(
    name="transaction_months",
    minimum_interval_seconds=MONTHS_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Keeps the monthly partitions equal to the months of the transaction log in force: when the "
        "configured file, the inbox or the generator settings change, it reads the log's months and "
        "adds new months / removes months that left the data. Launches no run."
    ),
)
def transaction_months_sensor(context: dg.SensorEvaluationContext, settings: PipelineSettings):
    fingerprint = log_in_force(settings.config).fingerprint()
    if context.cursor == fingerprint:
        return dg.SkipReason("the transaction log has not changed")
    try:
        months = log_months(settings)
    except InputDataError as exc:
        return dg.SkipReason(f"the transaction log cannot be read: {exc}")
    return dg.SensorResult(dynamic_partitions_requests=sensor_month_requests(context.instance, months), cursor=fingerprint)


def sensors(automation: AutomationSettings) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name="inbox_sensor",
        job_name=FULL_REFRESH_JOB,
        minimum_interval_seconds=automation.inbox_poll_seconds,
        default_status=_status(automation.inbox_sensor_running),
        description=(
            "Watches the inbox folder (automation.inbox_dir). A new, changed or removed transaction file "
            "(compared by content hash) launches a full refresh: the inbox files become the log in force, "
            "its months become the partitions, every month is re-ingested and everything downstream rebuilt."
        ),
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, settings: PipelineSettings):
        folder = settings.config.inbox_path()
        if not folder.is_dir():
            return dg.SkipReason(f"the inbox folder {folder} does not exist: create it and drop a transaction export there")
        files = inbox_files(folder)
        now = time.time()
        settling = [path.name for path in files if now - path.stat().st_mtime < SETTLE_SECONDS]
        if settling:
            return dg.SkipReason(f"waiting for {', '.join(settling)} to finish copying")
        cursor = json.loads(context.cursor) if context.cursor else {"files": {}, "runs": 0}
        current = _fingerprints(files, cursor["files"])
        changes = _describe_changes(cursor["files"], current)
        if not changes:
            context.update_cursor(json.dumps({**cursor, "files": current}, sort_keys=True))  # remember new mtimes
            return dg.SkipReason(f"no new, changed or removed file in {folder}")
        try:
            months = log_months(settings)
        except InputDataError as exc:  # the cursor stays: a corrected file is picked up later
            return dg.SkipReason(f"{changes}; the transaction log cannot be read: {exc}")
        runs = cursor["runs"] + 1
        state = json.dumps({name: entry["sha256"] for name, entry in current.items()}, sort_keys=True)
        context.log.info(f"inbox {folder}: {changes}; refreshing {months[0]}..{months[-1]}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"inbox-{runs}-{hashlib.sha256(state.encode()).hexdigest()[:12]}",
                    tags={**partition_range_tags(months), TRIGGER_TAG: "inbox sensor", INBOX_TAG: changes[:500]},
                )
            ],
            dynamic_partitions_requests=sensor_month_requests(context.instance, months),
            cursor=json.dumps({"files": current, "runs": runs}, sort_keys=True),
        )

    automation_sensor = dg.AutomationConditionSensorDefinition(
        "refresh_downstream",
        target=dg.AssetSelection.all(),
        default_status=_status(automation.automation_sensor_running),
        minimum_interval_seconds=30,
        description=(
            "Requests downstream assets whose automation condition holds: an upstream table (or month) was "
            "updated, none is missing or in progress. Covers backfills and runs that did not include them."
        ),
    )
    return [inbox_sensor, automation_sensor]

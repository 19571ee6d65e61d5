"""The inbox sensor (a dropped export is the upload), and declarative refresh of downstream assets.

Both sensors start STOPPED unless the config's `automation` section says running. The automation
conditions below are what the downstream assets declare, so the automation sensor knows when to
request them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from segmentation_pipeline.config import active_config
from segmentation_pipeline.defs.partitions import current_partitions, partition_range_tags, stale_window_reason
from segmentation_pipeline.defs.schedules import TRIGGER_TAG, full_refresh_job
from segmentation_pipeline.retail.transactions import inbox_files

# Unpartitioned assets: refresh once any upstream asset (or month) was updated and none is missing
# or still running.
REFRESH_WHEN_UPSTREAM_CHANGES = dg.AutomationCondition.eager()
# Monthly assets: the same, for every month whose upstream month changed, not only the newest one,
# so a backfill of old months flows downstream too.
REFRESH_CHANGED_MONTHS = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())

# A file written less than this long ago may still be being copied: it is picked up on a later tick.
SETTLE_SECONDS = 5.0
INBOX_TAG = "segmentation_pipeline/inbox_changes"

_automation = active_config().automation


def _sensor_status(running: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    name="inbox_sensor",
    job=full_refresh_job,
    minimum_interval_seconds=_automation.inbox_poll_seconds,
    default_status=_sensor_status(_automation.inbox_sensor_running),
    description=(
        "Watches the inbox folder (automation.inbox_dir). A new, changed or removed transaction file "
        "(compared by content hash) launches a full refresh: the inbox files become the log in force, "
        "every month is re-ingested and everything downstream rebuilt."
    ),
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    config = active_config()
    folder = config.automation.inbox_path()
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
    keys = current_partitions(config).get_partition_keys()
    location = context.code_location_origin.location_name if context.code_location_origin else None
    stale = stale_window_reason(keys, location, context.log)
    if stale:  # the cursor stays: the next tick, on reloaded definitions, launches the run
        return dg.SkipReason(f"{changes}; {stale}")
    runs = cursor["runs"] + 1
    context.update_cursor(json.dumps({"files": current, "runs": runs}, sort_keys=True))
    state = json.dumps({name: entry["sha256"] for name, entry in current.items()}, sort_keys=True)
    context.log.info(f"inbox {folder}: {changes}; refreshing {keys[0][:7]}..{keys[-1][:7]}")
    return dg.RunRequest(
        run_key=f"inbox-{runs}-{hashlib.sha256(state.encode()).hexdigest()[:12]}",
        tags={**partition_range_tags(keys), TRIGGER_TAG: "inbox sensor", INBOX_TAG: changes[:500]},
    )


automation_sensor = dg.AutomationConditionSensorDefinition(
    "refresh_downstream",
    target=dg.AssetSelection.all(),
    default_status=_sensor_status(_automation.automation_sensor_running),
    minimum_interval_seconds=30,
    description=(
        "Requests downstream assets whose automation condition holds: an upstream table (or month) was "
        "updated, none is missing or in progress. Covers backfills and runs that did not include them."
    ),
)

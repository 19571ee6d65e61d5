"""Jobs the CLI, schedules and sensors launch, and the two schedules (STOPPED unless the config says running).

Runs select months with partition-range tags rather than a single partition key: the partitioned
assets have a single-run backfill policy and the table IO manager writes any range, so one run
covers one month or all of them.
"""

import dagster as dg

from segmentation_pipeline.config import active_config
from segmentation_pipeline.defs.partitions import current_partitions, partition_range_tags, stale_window_reason
from segmentation_pipeline.defs.resources import month_of_partition_key
from segmentation_pipeline.storage import TableStore

FULL_REFRESH = "full_refresh"
NEWEST_MONTH = "newest_month_refresh"
ASSET_CHECKS = "asset_checks"
TRIGGER_TAG = "segmentation_pipeline/trigger"

full_refresh_job = dg.define_asset_job(
    FULL_REFRESH,
    selection=dg.AssetSelection.all(),
    description="Every asset, every month partition (the CLI `run` command, the weekly schedule and the inbox sensor).",
)

newest_month_job = dg.define_asset_job(
    NEWEST_MONTH,
    selection=dg.AssetSelection.assets("raw_transactions").downstream()
    | dg.AssetSelection.assets("ground_truth_customers"),
    description=(
        "The newest month of `raw_transactions` (and any earlier month not stored yet), then everything "
        "downstream of it."
    ),
)

asset_checks_job = dg.define_asset_job(
    ASSET_CHECKS,
    selection=dg.AssetSelection.all_asset_checks(),
    description=(
        "Every asset check against the latest stored tables, materializing nothing: for CI or a quick "
        "health check (`segmentation-pipeline check`)."
    ),
)


def _status(running: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


_automation = active_config().automation


@dg.schedule(
    name="monthly_newest_month",
    job=newest_month_job,
    cron_schedule=_automation.monthly_cron,
    execution_timezone=_automation.timezone,
    default_status=_status(_automation.schedules_running),
    description="Materializes the newest month partition of raw_transactions, then everything downstream.",
)
def monthly_newest_month(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    config = active_config()
    keys = current_partitions(config).get_partition_keys(current_time=context.scheduled_execution_time)
    if not keys:
        return dg.SkipReason("the transaction log has no complete month yet")
    if stale := stale_window_reason(keys, None, context.log):
        return dg.SkipReason(stale)  # the next tick also takes the months this one could not
    stored = set(TableStore(config.output_path()).partitions("cleaned_transactions"))
    # Downstream tables read every month: a month never stored is materialized with the newest one.
    first_missing = next((i for i, key in enumerate(keys) if month_of_partition_key(key) not in stored), len(keys) - 1)
    return dg.RunRequest(tags={**partition_range_tags(keys[first_missing:]), TRIGGER_TAG: "monthly schedule"})


@dg.schedule(
    name="weekly_full_refresh",
    job=full_refresh_job,
    cron_schedule=_automation.weekly_cron,
    execution_timezone=_automation.timezone,
    default_status=_status(_automation.schedules_running),
    description="Re-reads the whole transaction log and rebuilds every asset, every month.",
)
def weekly_full_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    keys = current_partitions().get_partition_keys(current_time=context.scheduled_execution_time)
    if not keys:
        return dg.SkipReason("the transaction log has no complete month yet")
    if stale := stale_window_reason(keys, None, context.log):
        return dg.SkipReason(stale)
    return dg.RunRequest(tags={**partition_range_tags(keys), TRIGGER_TAG: "weekly schedule"})

"""The two schedules: the newest month monthly, everything weekly. They start STOPPED unless the
config's `automation.schedules_running` says otherwise; cron strings come from the same section.
Each tick first registers the log's months (reading the data then, not when the code loads)."""


import dagster as dg

from segmentation_pipeline.config import AutomationSettings
from segmentation_pipeline.orchestration.conventions import (
    FULL_REFRESH_JOB,
    NEWEST_MONTH_JOB,
    TRIGGER_TAG,
)
from segmentation_pipeline.orchestration.partitions import (
    partition_range_tags,
    register_log_months,
)
from segmentation_pipeline.orchestration.resources import PipelineSettings


def schedules(automation: AutomationSettings) -> list[dg.ScheduleDefinition]:
    status = dg.DefaultScheduleStatus.RUNNING if automation.schedules_running else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        name="monthly_newest_month",
        job_name=NEWEST_MONTH_JOB,
        cron_schedule=automation.monthly_cron,
        execution_timezone=automation.timezone,
        default_status=status,
        description="Materializes the newest month of raw_transactions (and any month not published yet), "
        "then everything downstream.",
    )
    def monthly_newest_month(context: dg.ScheduleEvaluationContext, settings: PipelineSettings):
        months = register_log_months(context.instance, settings)
        if isinstance(months, dg.SkipReason):
            return months
        current = settings.output_folder().current()
        published = set(current.manifest["assets"].get("cleaned_transactions", {}).get("partitions", {})) if current else set()
        # Downstream tables read every month: a month never published is materialized with the newest one.
        first_missing = next((i for i, month in enumerate(months) if month not in published), len(months) - 1)
        return dg.RunRequest(tags={**partition_range_tags(months[first_missing:]), TRIGGER_TAG: "monthly schedule"})

    @dg.schedule(
        name="weekly_full_refresh",
        job_name=FULL_REFRESH_JOB,
        cron_schedule=automation.weekly_cron,
        execution_timezone=automation.timezone,
        default_status=status,
        description="Re-reads the whole transaction log and rebuilds every asset, every month.",
    )
    def weekly_full_refresh(context: dg.ScheduleEvaluationContext, settings: PipelineSettings):
        months = register_log_months(context.instance, settings)
        if isinstance(months, dg.SkipReason):
            return months
        return dg.RunRequest(tags={**partition_range_tags(months), TRIGGER_TAG: "weekly schedule"})

    return [monthly_newest_month, weekly_full_refresh]

"""Names, tags and automation conditions that several Dagster modules share, written once."""

import dagster as dg

OWNERS = ["team:customer-analytics"]

FULL_REFRESH_JOB = "full_refresh"
NEWEST_MONTH_JOB = "newest_month_refresh"
CHECKS_JOB = "asset_checks"
PUBLICATION_ASSET = "published_outputs"

TRIGGER_TAG = "segmentation_pipeline/trigger"  # what launched a run (schedule, sensor, CLI)
LAUNCHED_BY_TAG = "segmentation_pipeline/launched_by"
HOST_TAG = "segmentation_pipeline/host"
INBOX_TAG = "segmentation_pipeline/inbox_changes"

# Unpartitioned assets: refresh once any upstream asset (or month) was updated and none is missing
# or still running.
REFRESH_WHEN_UPSTREAM_CHANGES = dg.AutomationCondition.eager()
# Monthly assets: the same, for every month whose upstream month changed, not only the newest one,
# so a backfill of old months flows downstream too.
REFRESH_CHANGED_MONTHS = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())

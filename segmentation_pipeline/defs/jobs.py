"""Jobs the CLI, schedules and sensors launch.

Runs select months with partition-range tags rather than a single partition key: the monthly assets
have a single-run backfill policy and the table IO manager writes any range, so one run covers one
month or all of them. Every job ends with `published_outputs`, which publishes the run as a whole.
"""

import dagster as dg

from segmentation_pipeline.orchestration.conventions import (
    CHECKS_JOB,
    FULL_REFRESH_JOB,
    NEWEST_MONTH_JOB,
)

full_refresh_job = dg.define_asset_job(
    FULL_REFRESH_JOB,
    selection=dg.AssetSelection.all(),
    description="Every asset, every month partition (the CLI `run` command, the weekly schedule and the inbox sensor).",
)

newest_month_job = dg.define_asset_job(
    NEWEST_MONTH_JOB,
    selection=dg.AssetSelection.assets("raw_transactions").downstream()
    | dg.AssetSelection.assets("ground_truth_customers"),
    description=(
        "The newest month of `raw_transactions` (and any earlier month not published yet), then everything "
        "downstream of it."
    ),
)

asset_checks_job = dg.define_asset_job(
    CHECKS_JOB,
    selection=dg.AssetSelection.all_asset_checks(),
    description=(
        "Every asset check against the published outputs, materializing nothing: for CI or a quick "
        "health check (`segmentation-pipeline check`)."
    ),
)

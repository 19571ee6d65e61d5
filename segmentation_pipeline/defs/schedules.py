"""Jobs the CLI, schedules and sensors launch."""

import dagster as dg

full_refresh_job = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    description="Every asset, every month partition (the CLI `run` command runs this job).",
)

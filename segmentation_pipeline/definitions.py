"""Entry point for `dagster dev`, `dg` and the CLI: the assets and checks under `defs/`, plus what the
config decides (resources, executor, schedules, sensors), built from one config file.

Building the definitions reads the config file and no data: the months of the transaction log are
partitions registered when a run is prepared, never here.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from segmentation_pipeline.config import config_path_in_use, load_config
from segmentation_pipeline.defs.publication import publication_asset
from segmentation_pipeline.defs.resources import resources_and_executor
from segmentation_pipeline.defs.schedules import schedules
from segmentation_pipeline.defs.sensors import sensors


def build_definitions(config_path: str | Path | None = None) -> dg.Definitions:
    """Definitions for the config at `config_path` (default: $SEGMENTATION_CONFIG, else the built-in one)."""
    config_path = config_path_in_use(config_path)
    config = load_config(config_path)
    folder = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    upstream = sorted({key for asset in folder.assets or [] for key in asset.keys})
    return dg.Definitions.merge(
        folder,
        dg.Definitions(
            assets=[publication_asset(upstream)],
            schedules=schedules(config.automation),
            sensors=sensors(config.automation),
        ),
        resources_and_executor(config_path, config),
    )


def job_for(config_path: str, job_name: str) -> dg.JobDefinition:
    """The job rebuilt in another process (multiprocess, celery, k8s executors) on the same config."""
    return build_definitions(config_path).resolve_job_def(job_name)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()

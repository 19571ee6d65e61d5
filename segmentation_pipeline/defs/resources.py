"""Resources and executor of the code location, from the config file (built in `definitions.py`)."""

from pathlib import Path

import dagster as dg

from segmentation_pipeline.config import PipelineConfig
from segmentation_pipeline.orchestration.resources import (
    LLMNarrator,
    ObjectIOManager,
    PipelineSettings,
    TableIOManager,
    executor_from_config,
)


def resources_and_executor(config_path: Path, config: PipelineConfig) -> dg.Definitions:
    return dg.Definitions(
        resources={
            "settings": PipelineSettings(config_path=str(config_path)),
            "io_manager": TableIOManager(config_path=str(config_path)),
            "object_io_manager": ObjectIOManager(config_path=str(config_path)),
            "llm": LLMNarrator(**config.llm.model_dump()),
        },
        executor=executor_from_config(config.executor),
    )

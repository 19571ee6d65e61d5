"""Segment prediction service: a REST API on the model bundles the pipeline publishes.

`create_app(output_dir, settings)` builds the FastAPI application; `serve(output_dir, host, port,
method, settings)` runs it under uvicorn (the `segmentation-pipeline serve` command).
"""

from segmentation_pipeline.service.app import create_app
from segmentation_pipeline.service.server import serve
from segmentation_pipeline.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "serve"]

"""`segmentation-pipeline serve`: the service under uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from segmentation_pipeline.service.app import create_app
from segmentation_pipeline.service.settings import ServiceSettings


def serve(
    output_dir: str | Path,
    host: str | None = None,
    port: int | None = None,
    method: str | None = None,
    settings: ServiceSettings | None = None,
) -> None:
    """Serve the sets published under `output_dir` until interrupted.

    `host`, `port` and `method` (the command-line options) override the config's `service` section;
    the result is validated like the config file, so a bad port or method fails before binding.
    """
    overrides = {key: value for key, value in {"host": host, "port": port, "method": method}.items() if value is not None}
    settings = ServiceSettings.model_validate({**(settings or ServiceSettings()).model_dump(), **overrides})
    # One worker process: each would load its own copy of the bundles and poll `current` itself.
    uvicorn.run(create_app(output_dir, settings), host=settings.host, port=settings.port, log_level="info")

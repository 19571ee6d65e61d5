"""The `service` section of pipeline.yml: how `segmentation-pipeline serve` runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from segmentation_pipeline.clustering.base import METHOD_NAMES


class ServiceSettings(BaseModel):
    """host/port: where uvicorn listens (loopback by default: expose it deliberately).
    method: the retail method served when a request names none; null = the published comparison's
        recommended method. Every published method stays available through the `method` field.
    api_key_env: name of an environment variable; when it is set (non-empty) at start, every request
        except /health, /ready and the docs must carry its value in the `X-API-Key` header (401 otherwise).
    cors_origins: browser origins allowed to call the API; empty = CORS off (no CORS headers at all).
    reload_poll_seconds: how often the published `current` set is checked for a new one.
    max_batch_rows: the most rows one /segment/batch call may carry (more = 422).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    method: Literal[METHOD_NAMES] | None = None
    api_key_env: str | None = "SEGMENTATION_API_KEY"
    cors_origins: tuple[str, ...] = ()
    reload_poll_seconds: float = Field(10.0, gt=0)
    max_batch_rows: int = Field(10_000, ge=1, le=1_000_000)

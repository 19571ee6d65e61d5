"""The FastAPI application: `create_app(output_dir, settings)`.

Every handler reads the set in service once (`models.served`) and works on that immutable object,
so a reload that swaps it never changes a request half-way. Handlers are `async` and do their small
numpy work on the event loop: no thread hand-off per request, and single-row placements go through
the micro-batcher. Errors: 422 (FastAPI's validation shape, `loc` names the field) for anything the
schema or the served model refuses, 404 naming the id, 401 without the configured API key, 503 only
while no published set is in service.
"""


import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import pydantic_core
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmentation_pipeline.service import inputs
from segmentation_pipeline.service.batching import MicroBatcher
from segmentation_pipeline.service.catalog import FAMILIES, PublishedModels, ServedSet
from segmentation_pipeline.service.leads import LeadPlacements, LeadSegmenter
from segmentation_pipeline.service.published import LEADS, RETAIL, Family
from segmentation_pipeline.service.schemas import (
    SERVICE_NAME,
    BatchResponse,
    CustomerRequest,
    CustomerSegmentResponse,
    Health,
    LeadRequest,
    LeadSegmentResponse,
    ManualRequest,
    Method,
    NotFound,
    Problem,
    Ready,
    SegmentResponse,
    SegmentsResponse,
    batch_request_type,
)
from segmentation_pipeline.service.segmenter import Placements, Segmenter
from segmentation_pipeline.service.settings import ServiceSettings

API_KEY_HEADER = "X-API-Key"
UNAVAILABLE = {503: {"model": Problem, "description": "no published set is in service yet"}}
INVALID = {422: {"description": "malformed or out-of-range input; `detail[].loc` names the field"}}

MethodQuery = Annotated[Method | None, Query(description="clustering method (same as the body's `method`)")]


def create_app(
    output_dir: str | Path,
    settings: ServiceSettings | None = None,
    *,
    families: tuple[Family, ...] = FAMILIES,
    watch: bool = True,
) -> FastAPI:
    """The service on the sets published under `output_dir`.

    The current set is loaded at start-up; with `watch`, `current` is polled every
    `settings.reload_poll_seconds` and a new good set replaces the served one without a restart.
    """
    settings = settings or ServiceSettings()
    models = PublishedModels(Path(output_dir), families, {RETAIL.name: settings.method} if settings.method else {})
    batcher = MicroBatcher()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models.refresh()
        watcher = asyncio.create_task(_watch(models, settings.reload_poll_seconds)) if watch else None
        yield
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="Segment prediction service",
        description="Segments, personas and value tiers from the models the pipeline publishes.",
        version="1",
        lifespan=lifespan,
    )
    app.state.models = models
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
        )
    api_key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
    protected = [Depends(_key_check(api_key))] if api_key else []
    errors = {**INVALID, **UNAVAILABLE, **({401: {"model": Problem}} if api_key else {})}
    BatchRequest = batch_request_type(settings.max_batch_rows)

    @app.get("/health", response_model=Health, tags=["service"])
    async def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "service": SERVICE_NAME}

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}}, tags=["service"])
    async def ready() -> JSONResponse:
        """200 once a published set is loaded with every file matching its manifest's sha256, else 503.
        `problem` says why a newer published set was refused while this one keeps serving."""
        served = models.served
        body = {
            "status": "ready" if served else "not_ready",
            "set_id": served.set_id if served else None,
            "run_id": served.run_id if served else None,
            "published_at": served.published_at if served else None,
            "models": {name: list(f.segmenters) for name, f in served.families.items()} if served else {},
            "problem": models.problem,
        }
        return JSONResponse(body, status_code=200 if served else 503)

    @app.post("/segment/manual", response_model=SegmentResponse, responses=errors, dependencies=protected, tags=["segments"])
    async def segment_manual(body: ManualRequest, method: MethodQuery = None) -> Response:
        """The segment of a customer described by its features (RFM required, the rest optional)."""
        served = _served(models)
        segmenter = _segmenter(served, RETAIL, body.get("method"), method)
        matrix, (defaulted,) = inputs.retail_matrix(segmenter, [body], lambda _: ("body",))
        placements, index = await batcher.place(segmenter, matrix)
        return _json(_segment_response(served, segmenter, placements, index, defaulted))

    @app.post(
        "/segment/customer", response_model=CustomerSegmentResponse,
        responses={**errors, 404: {"model": NotFound}}, dependencies=protected, tags=["segments"],
    )
    async def segment_customer(body: CustomerRequest, method: MethodQuery = None) -> Response:
        """The segment of a customer of the published customer table, by id."""
        served = _served(models)
        segmenter = _segmenter(served, RETAIL, body.method, method)
        customer_id = str(body.customer_id)
        row = segmenter.known_index.get(customer_id)
        if row is None:
            return JSONResponse(
                {"detail": f"customer {customer_id!r} is not in published set {served.set_id}", "customer_id": customer_id},
                status_code=404,
            )
        return _json({**_segment_response(served, segmenter, segmenter.known, row, []), "customer_id": customer_id})

    @app.post(
        "/segment/batch", response_model=BatchResponse, responses=errors, dependencies=protected, tags=["segments"],
        description=f"Segments of up to {settings.max_batch_rows} customers in one call, in input order.",
    )
    async def segment_batch(body: BatchRequest, method: MethodQuery = None) -> Response:
        served = _served(models)
        segmenter = _segmenter(served, RETAIL, body.get("method"), method)
        matrix, defaulted = inputs.retail_matrix(segmenter, body["rows"], lambda i: ("body", "rows", i))
        return _json({
            **_model_fields(served, segmenter),
            "segments": _segment_list(segmenter),
            "results": _placements(segmenter, segmenter.place(matrix), defaulted),
        })

    @app.get("/segments", response_model=SegmentsResponse, responses=errors, dependencies=protected, tags=["segments"])
    async def segments(method: MethodQuery = None) -> Response:
        """Every segment of a method with its persona name, value tier, size and stats."""
        served = _served(models)
        segmenter = _segmenter(served, RETAIL, None, method)
        family = served.families[RETAIL.name]
        return _json({
            **_model_fields(served, segmenter),
            "recommended": family.recommended,
            "methods": list(family.segmenters),
            "segments": _segment_list(segmenter),
        })

    @app.post(
        "/leads/segment", response_model=LeadSegmentResponse,
        responses={**errors, 404: {"model": NotFound, "description": "no lead model is published"}},
        dependencies=protected, tags=["leads"],
    )
    async def segment_lead(body: LeadRequest, method: MethodQuery = None) -> Response:
        """The persona of a B2B lead given by its fields, from the lead model the leads domain publishes
        (404 until it does). The lead is prepared by the published bundle itself, as the pipeline
        prepared its training leads: placeholders, missing fields and unseen values are Unknown, a
        numeric age or experience is binned, the seniority is detected from the job title."""
        served = _served(models)
        if LEADS.name not in served.families:
            return JSONResponse({"detail": f"no lead model is published in set {served.set_id}"}, status_code=404)
        segmenter = _segmenter(served, LEADS, body.method, method)
        frame, ignored = inputs.lead_frame(segmenter, body)
        placed, index = await batcher.place(segmenter, frame)
        return _json(_lead_response(served, segmenter, placed, index, ignored))

    return app


async def _watch(models: PublishedModels, seconds: float) -> None:
    """Poll `current`; a new set loads in a worker thread while the loop keeps answering."""
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(models.refresh)


def _key_check(expected: str):
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the configured API key")

    async def check(key: Annotated[str | None, Security(header)]) -> None:
        if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header", headers={"WWW-Authenticate": "ApiKey"})

    return check


def _served(models: PublishedModels) -> ServedSet:
    served = models.served
    if served is None:
        raise HTTPException(503, f"no published set in service: {models.problem}")
    return served


def _segmenter(
    served: ServedSet, family: Family, body_method: str | None, query_method: str | None
) -> Segmenter | LeadSegmenter:
    """The requested method of `family` (body or query; the family's default when neither)."""
    if body_method and query_method and body_method != query_method:
        raise inputs.InputError(("query", "method"), f"the query says {query_method!r} but the body says {body_method!r}")
    models = served.families[family.name]
    method = body_method or query_method or models.default_method
    if method not in models.segmenters:
        raise inputs.InputError(
            ("body" if body_method else "query", "method"),
            f"method {method!r} is not published in set {served.set_id} (published: {', '.join(models.segmenters)})",
            method,
        )
    return models.segmenters[method]


def _model_fields(served: ServedSet, segmenter: Segmenter) -> dict:
    return {"method": segmenter.method, "model_version": segmenter.model_version, "set_id": served.set_id}


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's 422 body, serialised so that any input echoed back stays valid JSON (a NaN read by
    the lenient JSON parser becomes null; FastAPI's own handler would fail on it with a 500)."""
    return _json({"detail": exc.errors()}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI answers a body it cannot even decode (bytes that are not UTF-8 text) with a 400; it is
    malformed input like any other, so it gets the 422 every other malformed body gets."""
    if exc.status_code == 400:
        return _json({"detail": [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]}, status_code=422)
    return await http_exception_handler(request, exc)


def _json(body: dict, status_code: int = 200) -> Response:
    """The body as JSON, serialised once in Rust. Handlers build bodies that follow their declared
    `response_model` (the OpenAPI contract the schemathesis test checks every response against), so
    FastAPI's second validation pass over them is skipped: for a 10,000-row batch it cost more than
    the segmentation itself."""
    return Response(
        pydantic_core.to_json(body, inf_nan_mode="null", fallback=str), status_code=status_code,
        media_type="application/json",
    )


def _placements(segmenter: Segmenter, placements: Placements, defaulted: list[list[str]]) -> list[dict]:
    """One placement dict per row (plain lists: numpy scalars cost a conversion per value)."""
    segments = segmenter.segments
    return [
        {
            "segment_id": segment,
            "segment_name": segments[segment].name,
            "value_tier": segments[segment].value_tier,
            "confidence": confidence,
            "distance_to_center": distance,
            "second_segment": None if second < 0 else {
                "segment_id": second, "segment_name": segments[second].name, "distance_to_center": second_distance,
            },
            "defaulted_features": row_defaulted,
        }
        for segment, confidence, distance, second, second_distance, row_defaulted in zip(
            placements.segment.tolist(), placements.confidence.tolist(), placements.distance.tolist(),
            placements.second.tolist(), placements.second_distance.tolist(), defaulted,
        )
    ]


def _segment_response(served: ServedSet, segmenter: Segmenter, placements: Placements, i: int, defaulted: list[str]) -> dict:
    (placement,) = _placements(segmenter, placements.row(i), [defaulted])
    return {**placement, "stats": segmenter.segments[placement["segment_id"]].stats, **_model_fields(served, segmenter)}


def _lead_response(served: ServedSet, segmenter: LeadSegmenter, placed: LeadPlacements, i: int, ignored: list[str]) -> dict:
    (placement,) = _placements(segmenter, placed.placements.row(i), [[]])
    del placement["defaulted_features"]  # a lead has no defaults: what it leaves out is Unknown
    return {
        **placement,
        "stats": segmenter.segments[placement["segment_id"]].stats,
        "seniority": str(placed.attributes["seniority"].iat[i]),
        "unknown_fields": placed.unknown[i],
        "ignored_fields": ignored,
        **_model_fields(served, segmenter),
    }


def _segment_list(segmenter: Segmenter) -> list[dict]:
    return [
        {
            "segment_id": s.segment_id, "segment_name": s.name, "value_tier": s.value_tier, "rank": s.rank,
            "size": s.size, "percentage": s.percentage, "stats": s.stats,
        }
        for s in segmenter.segments.values()
    ]

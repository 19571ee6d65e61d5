"""Verification before loading, refusal of a bad set, and pick-up of a new set under load."""

from __future__ import annotations

import asyncio
import logging

import httpx

from segmentation_pipeline import layout
from segmentation_pipeline.service import ServiceSettings, create_app
from segmentation_pipeline.service import catalog as catalog_module
from segmentation_pipeline.service.catalog import PublishedModels
from segmentation_pipeline_tests.service_support import publish_retail_set

REFERENCE_INPUT = {"recency": 30, "frequency": 5, "monetary": 1500.0}


def test_a_tampered_bundle_is_refused_before_unpickling_and_the_good_set_keeps_serving(tmp_path, caplog, monkeypatch):
    first = publish_retail_set(tmp_path, "run-1", methods=("kmeans", "gmm"))
    models = PublishedModels(tmp_path)
    assert models.refresh() and models.served.set_id == first.set_id

    unpickled = []
    original = catalog_module.ModelBundle.from_bytes
    monkeypatch.setattr(catalog_module.ModelBundle, "from_bytes",
                        staticmethod(lambda data, source: unpickled.append(str(source)) or original(data, source)))
    new_set = publish_retail_set(tmp_path, "run-2", methods=("kmeans", "gmm"))
    tampered = new_set.file(layout.model_bundle("gmm"))
    tampered.write_bytes(tampered.read_bytes() + b"\0")

    with caplog.at_level(logging.ERROR, logger="segmentation_pipeline.service"):
        assert not models.refresh()
    assert models.served.set_id == first.set_id
    assert str(tampered) not in unpickled
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"refused published set {new_set.set_id}" in line and "gmm_bundle.joblib" in line and "sha256" in line
    assert f"still serving set {first.set_id}" in line
    assert new_set.set_id in models.problem

    caplog.clear()
    assert not models.refresh(), "a refused set is not retried until `current` moves"
    assert not caplog.records

    # Every method again: a partial run would carry the tampered gmm bundle into the new set (refused too).
    third = publish_retail_set(tmp_path, "run-3", methods=("kmeans", "gmm"))
    assert models.refresh() and models.served.set_id == third.set_id and models.problem is None


def test_a_set_whose_recommended_method_is_missing_is_refused(tmp_path):
    publish_retail_set(tmp_path, "run-1", methods=("kmeans",), recommended="gmm")
    models = PublishedModels(tmp_path)
    assert not models.refresh()
    assert models.served is None and "recommends 'gmm'" in models.problem


def test_a_configured_method_that_is_not_published_is_refused(tmp_path):
    publish_retail_set(tmp_path, "run-1", methods=("kmeans",))
    models = PublishedModels(tmp_path, default_methods={"retail": "hdbscan"})
    assert not models.refresh()
    assert "'hdbscan' is not published" in models.problem


def test_ready_reports_a_refused_newer_set(tmp_path):
    first = publish_retail_set(tmp_path, "run-1", methods=("kmeans",))

    async def scenario():
        app = create_app(tmp_path, ServiceSettings(api_key_env=None, reload_poll_seconds=0.05))
        async with app.router.lifespan_context(app), _client(app) as client:
            bad = publish_retail_set(tmp_path, "run-2", methods=("kmeans",))
            bad.file(layout.personas_json("kmeans")).write_text("{}")
            for _ in range(100):
                ready = (await client.get("/ready")).json()
                if ready["problem"]:
                    return ready
                await asyncio.sleep(0.05)
        raise AssertionError("the refused set never showed in /ready")

    ready = asyncio.run(scenario())
    assert ready["status"] == "ready" and ready["set_id"] == first.set_id
    assert "-run-2" in ready["problem"] and "kmeans_personas.json" in ready["problem"]


def test_requests_in_flight_during_a_reload_all_succeed(tmp_path):
    """Clients hammer every endpoint while a new set is published; the watcher swaps it in. Every
    request succeeds and every answer comes from one whole set (its model version is its run)."""
    first = publish_retail_set(tmp_path, "run-1", methods=("kmeans", "gmm"))
    customer = {"customer_id": 100007, "method": "gmm"}
    batch = {"rows": [REFERENCE_INPUT] * 200}

    async def client_loop(client, stop, seen, statuses):
        while not stop.is_set():
            for path, body in (("/segment/manual", REFERENCE_INPUT), ("/segment/customer", customer),
                               ("/segment/batch", batch)):
                response = await client.post(path, json=body)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    answer = response.json()
                    seen.add((answer["set_id"], answer["model_version"]))
            await asyncio.sleep(0)

    async def scenario():
        app = create_app(tmp_path, ServiceSettings(api_key_env=None, reload_poll_seconds=0.05))
        stop, seen, statuses = asyncio.Event(), set(), []
        async with app.router.lifespan_context(app), _client(app) as client:
            clients = [asyncio.create_task(client_loop(client, stop, seen, statuses)) for _ in range(8)]
            await asyncio.sleep(0.3)
            second = await asyncio.to_thread(publish_retail_set, tmp_path, "run-2", ("kmeans", "gmm"))
            for _ in range(200):
                if (second.set_id, "run-2") in seen:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*clients)
        return seen, statuses, second

    seen, statuses, second = asyncio.run(scenario())
    assert seen == {(first.set_id, "run-1"), (second.set_id, "run-2")}
    assert len(statuses) > 100 and set(statuses) == {200}


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")

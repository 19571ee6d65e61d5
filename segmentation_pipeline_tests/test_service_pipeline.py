"""The service as part of the running project: on what a real pipeline run publishes, and started by
`segmentation-pipeline serve` (uvicorn replaced by a stub, so no port is bound)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from segmentation_pipeline import cli, layout
from segmentation_pipeline.clustering.base import METHOD_NAMES
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.service import ServiceSettings, create_app
from segmentation_pipeline.service import server as server_module
from segmentation_pipeline_tests.conftest import materialize, write_config

FAST_CLUSTERING = {"k_max": 5, "bootstraps": 2, "autoencoder_epochs": 10}
# Everything the service reads (features, every method, the comparison, every method's personas).
SERVED_STAGE = [
    "raw_transactions", "ground_truth_customers", "cleaned_transactions", "rejected_transactions", "rfm",
    "customer_features_basic", "customer_features_enriched", "customer_class_spend", *METHOD_NAMES, "method_comparison",
    *(f"{method}_profile" for method in METHOD_NAMES), *(f"{method}_personas" for method in METHOD_NAMES),
]


def test_the_service_serves_what_a_pipeline_run_published(tmp_path):
    config = write_config(tmp_path, clustering=FAST_CLUSTERING)
    result = materialize(config, dg.DagsterInstance.ephemeral(), SERVED_STAGE)
    assert result.success
    output_dir = tmp_path / "outputs"
    published = OutputFolder(output_dir).current()
    customers = pd.read_parquet(published.file(layout.table("customer_features_basic")))
    customer_id = str(customers["customer_id"].iloc[len(customers) // 2])

    with TestClient(create_app(output_dir, ServiceSettings(api_key_env=None), watch=False)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        body = ready.json()
        assert body["set_id"] == published.set_id and body["run_id"] == result.run_id
        assert sorted(body["models"]["retail"]) == sorted(METHOD_NAMES)

        recommended = client.get("/segments").json()["recommended"]
        answer = client.post("/segment/customer", json={"customer_id": customer_id})
        assert answer.status_code == 200, answer.json()
        placed = answer.json()
        if customer_id.isdigit():  # the reference's shape: a numeric id sent as a JSON number
            assert client.post("/segment/customer", json={"customer_id": int(customer_id)}).json() == placed
        assert placed["customer_id"] == str(customer_id) and placed["method"] == recommended
        assert placed["model_version"] == result.run_id and placed["defaulted_features"] == []
        assignments = pd.read_parquet(published.file(layout.cluster_assignments(recommended)))
        cluster = assignments.set_index(assignments["customer_id"].astype(str)).loc[customer_id, "cluster"]
        assert placed["segment_id"] == int(cluster)  # the label the pipeline assigned this customer
        assert client.post("/segment/customer", json={"customer_id": "no-such-customer"}).status_code == 404


def _serve_without_binding(monkeypatch) -> dict:
    """Make `uvicorn.run` record what it was asked to serve instead of binding a port."""
    started = {}
    monkeypatch.setattr(server_module.uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    return started


def test_serve_command_with_nothing_published_starts_and_is_not_ready(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path)
    started = _serve_without_binding(monkeypatch)
    assert cli.main(["serve", "--config", str(config), "--port", "5099", "--method", "gmm"]) == 0
    assert (started["host"], started["port"]) == ("127.0.0.1", 5099)
    assert "nothing published yet" in capsys.readouterr().out
    with TestClient(started["app"]) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "nothing published" in ready.json()["problem"]
        assert client.get("/health").status_code == 200


def test_serve_command_takes_the_config_service_section(tmp_path, monkeypatch):
    config = write_config(tmp_path, service={"host": "0.0.0.0", "port": 6001, "api_key_env": None})
    started = _serve_without_binding(monkeypatch)
    assert cli.main(["serve", "--config", str(config)]) == 0
    assert (started["host"], started["port"]) == ("0.0.0.0", 6001)


@pytest.mark.parametrize(
    ("service", "options", "problem"),
    [
        ({"port": 0}, [], "service.port"),
        ({"colour": "red"}, [], "service.colour"),
        ({}, ["--method", "dbscan"], "--method"),
        ({}, ["--port", "70000"], "--port"),
    ],
)
def test_serve_config_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, service, options, problem):
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["service"] = service
    config.write_text(yaml.safe_dump(data))
    started = _serve_without_binding(monkeypatch)
    assert cli.main(["serve", "--config", str(config), *options]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and problem in error
    assert not started, "nothing is served after a config error"

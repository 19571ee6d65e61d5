"""Shared fixtures: a small pipeline config in a temp folder, and running the graph on it in-process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from segmentation_pipeline import layout
from segmentation_pipeline.config import load_config
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.conventions import (
    FULL_REFRESH_JOB,
    PUBLICATION_ASSET,
)
from segmentation_pipeline.orchestration.partitions import (
    partition_range_tags,
    sync_months,
    transaction_months,
)
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH
from segmentation_pipeline.retail.transactions import data_months, log_in_force

SHARED_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_sample.xlsx"
SMALL_SYNTHETIC = {"customers": 600, "months": 6, "seed": 7, "start_month": "2025-01"}


def write_config(folder: Path, transactions: dict | None = None, **sections) -> Path:
    """Write the shipped pipeline.yml with outputs under `folder` and small synthetic data; return its path.
    The inbox is kept inside `folder` too, so no test sees another's files."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["output_dir"] = str(folder / "outputs")
    config["transactions"] = transactions or {"source": "synthetic", "synthetic": SMALL_SYNTHETIC}
    config["automation"]["inbox_dir"] = str(folder / "inbox")
    config.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def register_months(config_path: Path, instance: dg.DagsterInstance) -> list[str]:
    """What a run's preparation does: the log's months become the instance's partitions."""
    config = load_config(config_path)
    now = pd.Timestamp.now(tz="UTC")
    sync_months(instance, data_months(log_in_force(config), config.output_path() / layout.CACHE, now))
    return instance.get_dynamic_partitions(transaction_months.name)


def materialize(
    config_path: Path, instance: dg.DagsterInstance, assets: list[str] | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    """Materialize `assets` (default: everything) and publish them, every month, in this process."""
    months = register_months(config_path, instance)
    job = build_definitions(config_path).resolve_job_def(FULL_REFRESH_JOB)
    selection = None if assets is None else [dg.AssetKey(name) for name in [*assets, PUBLICATION_ASSET]]
    return job.execute_in_process(
        instance=instance, asset_selection=selection, tags=partition_range_tags(months), **kwargs
    )


@pytest.fixture
def small_config(tmp_path) -> Path:
    """A small synthetic config in a temporary folder."""
    return write_config(tmp_path)


@pytest.fixture
def online_retail() -> Path:
    if not SHARED_DATASET.exists():
        pytest.skip("the shared Online Retail sample is not beside this checkout")
    return SHARED_DATASET


ONLINE_RETAIL_TRANSACTIONS = {
    "source": "file",
    "columns": {
        "customer_id": "CustomerID",
        "invoice_id": "InvoiceNo",
        "timestamp": "InvoiceDate",
        "quantity": "Quantity",
        "unit_price": "UnitPrice",
        "product_id": "StockCode",
        "description": "Description",
        "country": "Country",
    },
}


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port answering with `handler`; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send_json(handler: BaseHTTPRequestHandler, data: object) -> None:
    """Answer an HTTP request of a test server with a JSON body."""
    payload = json.dumps(data).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def cleaned_log(lines: list[tuple], columns: list[str]) -> pd.DataFrame:
    """A cleaned-transactions table from row tuples (invoice, customer, timestamp, quantity, unit_price, ...)."""
    df = pd.DataFrame(lines, columns=columns)
    df["timestamp"] = pd.to_datetime(df["timestamp"]).astype("datetime64[ns]")
    df["quantity"] = df["quantity"].astype(np.float64)
    df["unit_price"] = df["unit_price"].astype(np.float64)
    df["amount"] = df["quantity"] * df["unit_price"]
    df["is_return"] = df["quantity"] < 0
    df.insert(0, "source_row", np.arange(len(df)))
    return df

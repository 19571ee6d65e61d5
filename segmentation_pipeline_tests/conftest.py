"""Shared fixtures: a small pipeline config in a temp folder, and definitions loaded for it."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH

SHARED_DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_sample.xlsx"
SMALL_SYNTHETIC = {"customers": 600, "months": 6, "seed": 7, "start_month": "2025-01"}


def write_config(folder: Path, transactions: dict | None = None, **sections) -> Path:
    """Write the shipped pipeline.yml with outputs under `folder` and small synthetic data; return its path."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["output_dir"] = str(folder / "outputs")
    config["transactions"] = transactions or {"source": "synthetic", "synthetic": SMALL_SYNTHETIC}
    config.update(sections)
    path = folder / "pipeline.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load_definitions() -> dg.Definitions:
    """Definitions for the config in $SEGMENTATION_CONFIG (re-imported: partitions depend on the config)."""
    for name in [m for m in sys.modules if m.startswith("segmentation_pipeline.defs")]:
        del sys.modules[name]
    from segmentation_pipeline.definitions import defs

    return defs()


def partition_range_tags(definitions: dg.Definitions) -> dict[str, str]:
    from segmentation_pipeline.defs.partitions import monthly_partitions

    keys = monthly_partitions.get_partition_keys()
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


@pytest.fixture
def small_config(tmp_path, monkeypatch) -> Path:
    """A small synthetic config, active for this test."""
    path = write_config(tmp_path)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    return path


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

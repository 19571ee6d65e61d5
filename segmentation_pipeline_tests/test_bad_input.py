"""Bad input stops the run with one clear message and leaves the last good outputs untouched."""

import hashlib

import dagster as dg
import pandas as pd
import pytest

from segmentation_pipeline import cli
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline_tests.conftest import load_definitions, partition_range_tags, write_config

CANONICAL = ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "product_id", "description", "country"]
COLUMNS = {name: name for name in CANONICAL}


def _snapshot(output_dir) -> dict[str, str]:
    """Content hash of every output file (the parse cache may grow; it is not an output)."""
    return {
        str(p.relative_to(output_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(output_dir.rglob("*"))
        if p.is_file() and "cache" not in p.relative_to(output_dir).parts and not p.name.endswith(".lock")
    }


def _run(config_path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(config_path))
    load_definitions()
    code = cli.main(["run", "--config", str(config_path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A good run on a small CSV export; its outputs are what bad runs must not touch."""
    folder = tmp_path_factory.mktemp("good")
    data = synthetic.generate(customers=600, months=6, seed=7)
    csv = folder / "export.csv"
    synthetic.write_transactions(data.transactions[CANONICAL], csv)
    transactions = {"source": "file", "path": str(csv), "columns": COLUMNS, "first_month": "2025-01", "last_month": "2025-06"}
    config = write_config(folder, transactions)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(config))
    load_definitions()
    assert cli.main(["run", "--config", str(config)]) == 0
    yield folder, transactions, data.transactions[CANONICAL]
    monkeypatch.undo()


def _bad_file(folder, case: str, good: pd.DataFrame):
    path = folder / f"{case}.csv"
    if case == "missing_column":
        good.drop(columns=["unit_price"]).to_csv(path, index=False)
    elif case == "empty_file":
        path.write_bytes(b"")
    elif case == "truncated_parquet":
        path = folder / "truncated.parquet"
        good.to_parquet(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "wrong_types":
        frame = good.copy()
        frame["quantity"] = "lots"
        frame.to_csv(path, index=False)
    elif case == "single_customer":
        frame = good.copy()
        frame["customer_id"] = "C1"
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_column", ["missing_column.csv", "unit_price"]),
        ("empty_file", ["empty_file.csv", "empty"]),
        ("truncated_parquet", ["truncated.parquet"]),
        ("wrong_types", ["wrong_types.csv", "quantity"]),
        ("single_customer", ["single_customer.csv", "customer_id", "1 distinct customer"]),
    ],
)
def test_bad_file_fails_clearly_and_keeps_last_good_outputs(good_run, case, expected, tmp_path, monkeypatch, capsys):
    folder, transactions, good = good_run
    before = _snapshot(folder / "outputs")
    bad = {**transactions, "path": str(_bad_file(tmp_path, case, good))}
    config = write_config(tmp_path, bad, output_dir=str(folder / "outputs"))
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
    code, output = _run(config, monkeypatch, capsys)
    assert code != 0
    failures = [line for line in output.splitlines() if "raw_transactions failed" in line]
    assert failures, output
    for fragment in expected:
        assert fragment in failures[0], (fragment, failures[0])
    assert _snapshot(folder / "outputs") == before


def test_non_utf8_csv_is_ingested_with_a_fallback_encoding(good_run, tmp_path, monkeypatch):
    folder, transactions, good = good_run
    frame = good.copy()
    frame["description"] = "Crème brûlée set £5"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="cp1252")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write_config(tmp_path, {**transactions, "path": str(path)})))
    definitions = load_definitions()
    result = definitions.resolve_job_def("full_refresh").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey("raw_transactions")],
        tags=partition_range_tags(definitions),
    )
    assert result.success
    raw = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "outputs/tables/raw_transactions").glob("*.parquet")))
    assert len(raw) == len(good)
    assert (raw["description"] == "Crème brûlée set £5").all()

"""Bad input stops the run with one clear message and leaves the last good outputs untouched."""

import hashlib
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from segmentation_pipeline import cli, layout
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.orchestration.conventions import FULL_REFRESH_JOB
from segmentation_pipeline.orchestration.partitions import partition_range_tags, sync_months
from segmentation_pipeline.orchestration.progress import user_error_message
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.retail import synthetic
from segmentation_pipeline_tests.conftest import materialize, write_config

CANONICAL = ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "product_id", "description", "country"]
COLUMNS = {name: name for name in CANONICAL}


def _snapshot(output_dir: Path) -> dict[str, str]:
    """What readers see: the current set's id and the content hash of every file reachable through
    the stable paths (symlinks followed). The caches, runs' staging and the lock files are no output."""
    hidden = {layout.CACHE, layout.STAGING, layout.SETS}
    found = {"<current set>": OutputFolder(output_dir).current().set_id}
    for root, folders, files in os.walk(output_dir, followlinks=True):
        relative = Path(root).relative_to(output_dir)
        if relative == Path("."):
            folders[:] = [name for name in folders if name not in hidden]
        for name in files:
            if name.startswith(".segmentation_pipeline."):
                continue
            found[str(relative / name)] = hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()
    return found


def _sets(output_dir: Path) -> list[str]:
    return [published.set_id for published in OutputFolder(output_dir).history()]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A good run on a small CSV export; its outputs are what bad runs must not touch."""
    folder = tmp_path_factory.mktemp("good")
    data = synthetic.generate(customers=600, months=6, seed=7)
    csv = folder / "export.csv"
    synthetic.write_transactions(data.transactions[CANONICAL], csv)
    transactions = {"source": "file", "path": str(csv), "columns": COLUMNS}
    config = write_config(folder, transactions)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
        assert cli.main(["run", "--config", str(config)]) == 0
    yield folder, transactions, data.transactions[CANONICAL]


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
    outputs = folder / "outputs"
    before, sets_before = _snapshot(outputs), _sets(outputs)
    bad = {**transactions, "path": str(_bad_file(tmp_path, case, good))}
    config = write_config(tmp_path, bad, output_dir=str(outputs))
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
    code = cli.main(["run", "--config", str(config)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0
    # One message names the file, the column and the problem: the run's preparation reads the file
    # (its months) and stops with `error: ...`, or the ingest step fails with the same message.
    failures = [line for line in output.splitlines() if line.startswith("error: ") or "raw_transactions failed" in line]
    assert failures, output
    for fragment in expected:
        assert fragment in failures[0], (fragment, failures[0])
    assert _snapshot(outputs) == before
    assert _sets(outputs) == sets_before  # no set was published
    assert not (outputs / layout.STAGING).exists() or not any((outputs / layout.STAGING).iterdir())


def test_file_broken_after_its_months_were_registered_fails_ingest_and_publishes_nothing(good_run, tmp_path):
    """A run launched on months registered earlier (a schedule tick, the UI) whose file was replaced by a
    broken one since: the ingest step fails with the same message and the published set is untouched."""
    folder, transactions, good = good_run
    outputs = folder / "outputs"
    before, sets_before = _snapshot(outputs), _sets(outputs)
    months = sorted(OutputFolder(outputs).current().manifest["assets"]["raw_transactions"]["partitions"])
    config = write_config(tmp_path, {**transactions, "path": str(_bad_file(tmp_path, "wrong_types", good))},
                          output_dir=str(outputs))
    instance = dg.DagsterInstance.ephemeral()
    sync_months(instance, months)
    job = build_definitions(config).resolve_job_def(FULL_REFRESH_JOB)
    result = job.execute_in_process(instance=instance, tags=partition_range_tags(months), raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "raw_transactions"
    message = user_error_message(failure.step_failure_data.error)
    for fragment in ("wrong_types.csv", "quantity", "numbers"):
        assert fragment in message, message
    assert _snapshot(outputs) == before
    assert _sets(outputs) == sets_before


def test_non_utf8_csv_is_ingested_with_a_fallback_encoding(good_run, tmp_path):
    folder, transactions, good = good_run
    frame = good.copy()
    frame["description"] = "Crème brûlée set £5"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="cp1252")
    config = write_config(tmp_path, {**transactions, "path": str(path)})
    result = materialize(config, dg.DagsterInstance.ephemeral(), ["raw_transactions"])
    assert result.success
    raw = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "outputs/tables/raw_transactions").glob("*.parquet")))
    assert len(raw) == len(good)
    assert (raw["description"] == "Crème brûlée set £5").all()

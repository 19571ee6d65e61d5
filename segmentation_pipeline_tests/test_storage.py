import json

import pandas as pd
import pytest

from segmentation_pipeline.storage import (
    TableStore,
    atomic_path,
    atomic_write_text,
    read_manifest,
    record_in_manifest,
    write_csv,
)


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "table.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temp:
            temp.write_text("half")
            raise RuntimeError("killed mid-way")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["table.txt"]


def test_table_store_whole_and_partitioned(tmp_path):
    store = TableStore(tmp_path)
    frame = pd.DataFrame({"a": [1, 2, 3], "month": ["2025-01", "2025-01", "2025-02"]})
    store.write("t", frame)
    pd.testing.assert_frame_equal(store.read("t"), frame)
    store.write("p", frame[frame.month == "2025-02"], partition="2025-02")
    store.write("p", frame[frame.month == "2025-01"], partition="2025-01")
    assert store.partitions("p") == ["2025-01", "2025-02"]
    assert store.rows_per_partition("p") == {"2025-01": 2, "2025-02": 1}
    assert store.read("p", ["2025-01", "2025-02"])["a"].tolist() == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="2025-03"):
        store.read("p", ["2025-01", "2025-03"])
    with pytest.raises(FileNotFoundError, match="has not been materialized"):
        store.read("nothing")


def test_manifest_records_files_rows_and_runs(tmp_path):
    (tmp_path / "tables").mkdir()
    record_in_manifest(tmp_path, "rfm", "run-1", [tmp_path / "tables/rfm.parquet"], 10)
    month = {"2025-01": ([tmp_path / "tables/raw/2025-01.parquet"], 4)}
    record_in_manifest(tmp_path, "raw", "run-1", [], None, partitions=month)
    month = {"2025-02": ([tmp_path / "tables/raw/2025-02.parquet"], 5)}
    record_in_manifest(tmp_path, "raw", "run-2", [], None, partitions=month)
    manifest = read_manifest(tmp_path)
    assert manifest["assets"]["rfm"]["files"] == ["tables/rfm.parquet"]
    assert manifest["assets"]["rfm"]["row_count"] == 10
    raw = manifest["assets"]["raw"]
    assert raw["row_count"] == 9 and raw["run_id"] == "run-2"
    assert raw["files"] == ["tables/raw/2025-01.parquet", "tables/raw/2025-02.parquet"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_csv_round_trips_with_times_to_the_second(tmp_path):
    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "value": [1.5, 2.0], "seen": pd.to_datetime(["2025-01-02 03:04:05.678", "2025-02-01"], format="ISO8601")}
    )
    path = write_csv(frame, tmp_path / "out.csv")
    back = pd.read_csv(path, parse_dates=["seen"])
    assert back["customer_id"].tolist() == ["a", "b"]
    assert back["value"].tolist() == [1.5, 2.0]
    assert back["seen"].tolist() == [pd.Timestamp("2025-01-02 03:04:05"), pd.Timestamp("2025-02-01")]


def test_month_parts_keep_only_used_categories_and_mix_with_plain_text(tmp_path):
    store = TableStore(tmp_path)
    ids = pd.Categorical(["a", "b", "c"], categories=[f"id{i}" for i in range(10_000)] + ["a", "b", "c"])
    frame = pd.DataFrame({"customer_id": ids, "month": ["2025-01", "2025-01", "2025-02"]})
    store.write("t", frame[frame.month == "2025-01"], partition="2025-01")
    assert list(pd.read_parquet(store.path("t", "2025-01"))["customer_id"].cat.categories) == ["a", "b"]
    store.write("t", pd.DataFrame({"customer_id": ["c"], "month": ["2025-02"]}), partition="2025-02")
    assert store.read("t", ["2025-01", "2025-02"])["customer_id"].astype(str).tolist() == ["a", "b", "c"]

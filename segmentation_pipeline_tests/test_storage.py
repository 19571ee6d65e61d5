
import pandas as pd
import pytest

from segmentation_pipeline.storage import atomic_path, atomic_write_text, read_parquet_parts, write_csv, write_parquet


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "table.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temp:
            temp.write_text("half")
            raise RuntimeError("killed mid-way")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["table.txt"]


def test_written_files_are_readable_by_others(tmp_path):
    assert (atomic_write_text(tmp_path / "report.html", "x").stat().st_mode & 0o777) == 0o644


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
    ids = pd.Categorical(["a", "b", "c"], categories=[f"id{i}" for i in range(10_000)] + ["a", "b", "c"])
    frame = pd.DataFrame({"customer_id": ids, "month": ["2025-01", "2025-01", "2025-02"]})
    first = write_parquet(frame[frame.month == "2025-01"], tmp_path / "2025-01.parquet")
    assert list(pd.read_parquet(first)["customer_id"].cat.categories) == ["a", "b"]
    second = write_parquet(pd.DataFrame({"customer_id": ["c"], "month": ["2025-02"]}), tmp_path / "2025-02.parquet")
    assert read_parquet_parts([first, second])["customer_id"].astype(str).tolist() == ["a", "b", "c"]

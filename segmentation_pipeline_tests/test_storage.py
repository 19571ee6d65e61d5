
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentation_pipeline import storage
from segmentation_pipeline.storage import (
    PartitionedParquetWriter,
    atomic_path,
    atomic_write_text,
    write_csv,
    write_parquet,
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


def test_month_parts_keep_only_used_categories(tmp_path):
    ids = pd.Categorical(["a", "b", "c"], categories=[f"id{i}" for i in range(10_000)] + ["a", "b", "c"])
    frame = pd.DataFrame({"customer_id": ids, "month": ["2025-01", "2025-01", "2025-02"]})
    first = write_parquet(frame[frame.month == "2025-01"], tmp_path / "2025-01.parquet")
    assert list(pd.read_parquet(first)["customer_id"].cat.categories) == ["a", "b"]


@pytest.mark.parametrize("ordered", [False, True])
def test_used_categories_match_pandas_with_missing_values_and_order(tmp_path, ordered):
    codes = np.random.default_rng(3).integers(-1, 40, 5_000)  # -1: missing
    frame = pd.DataFrame({"id": pd.Categorical.from_codes(codes, [f"c{i}" for i in range(60)], ordered=ordered)})
    written = pd.read_parquet(write_parquet(frame, tmp_path / "part.parquet"))["id"]
    expected = frame["id"].cat.remove_unused_categories()
    assert list(written.cat.categories) == list(expected.cat.categories)
    assert written.astype(object).tolist() == expected.astype(object).tolist()


def test_tables_written_in_slices_read_back_equal(tmp_path, monkeypatch):
    """Slices where a text column is all missing, categoricals and times: one schema, the same table."""
    monkeypatch.setattr(storage, "WRITE_SLICE_ROWS", 2)
    frame = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "note": [None, None, "x", None, "y"],
        "country": pd.Categorical(["UK", "UK", "FR", "UK", "DE"]),
        "seen": pd.to_datetime(["2025-01-01", "2025-01-02", None, "2025-01-04", "2025-01-05"]),
        "value": [1.0, float("nan"), 3.0, 4.0, 5.0],
    })
    path = storage.write_parquet(frame, tmp_path / "table.parquet")
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(storage.read_parquet(path), pd.read_parquet(path))
    pd.testing.assert_frame_equal(storage.read_parquet(path), frame, check_categorical=False)


def test_partitioned_writer_appends_chunks_whatever_their_categories(tmp_path):
    """Chunks of one key may come with other categories and code widths (int8 vs int16): one file, one schema."""
    small = pd.DataFrame({"id": pd.Categorical(["a", "b"]), "n": [1, 2]})
    wide = pd.DataFrame({"id": pd.Categorical(["c"], categories=[f"x{i}" for i in range(300)] + ["c"]), "n": [3]})
    with PartitionedParquetWriter(lambda key: tmp_path / f"{key}.parquet") as writer:
        writer.write("2025-01", small)
        writer.write("2025-01", wide)
        writer.write("2025-02", wide)
    assert writer.rows == {"2025-01": 3, "2025-02": 1}
    back = pd.read_parquet(tmp_path / "2025-01.parquet")
    assert back["id"].astype(str).tolist() == ["a", "b", "c"] and back["n"].tolist() == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2025-01.parquet", "2025-02.parquet"]


def test_partitioned_writer_stores_identifier_columns_as_plain_text(tmp_path):
    """Chunks whose ids come as categoricals or as text give one file with the ids as plain strings;
    the other categorical columns still keep only the categories they use."""
    categorical = pd.DataFrame(
        {
            "customer_id": pd.Categorical(["a", "b"], categories=["a", "b", "unused"]),
            "country": pd.Categorical(["UK", "FR"], categories=["UK", "FR", "DE"]),
        }
    )
    text = pd.DataFrame({"customer_id": pd.Series(["c"], dtype="str"), "country": pd.Categorical(["UK"])})
    with PartitionedParquetWriter(lambda key: tmp_path / f"{key}.parquet", plain_text=["customer_id"]) as writer:
        writer.write("2025-01", categorical)
        writer.write("2025-01", text)
    schema = pq.read_schema(tmp_path / "2025-01.parquet")
    assert schema.field("customer_id").type == pa.string()
    assert pa.types.is_dictionary(schema.field("country").type)
    back = pd.read_parquet(tmp_path / "2025-01.parquet")
    assert back["customer_id"].tolist() == ["a", "b", "c"] and back["country"].astype(str).tolist() == ["UK", "FR", "UK"]
    assert set(back["country"].cat.categories) == {"UK", "FR"}


def test_partitioned_writer_leaves_nothing_when_the_step_fails(tmp_path):
    with pytest.raises(RuntimeError), PartitionedParquetWriter(lambda key: tmp_path / f"{key}.parquet") as writer:
        writer.write("2025-01", pd.DataFrame({"n": [1]}))
        raise RuntimeError("the step failed")
    assert list(tmp_path.iterdir()) == []


def test_partitioned_writer_names_a_column_that_changes_type(tmp_path):
    with pytest.raises(ValueError, match="column 'n' changes type"), PartitionedParquetWriter(
        lambda key: tmp_path / f"{key}.parquet"
    ) as writer:
        writer.write("k", pd.DataFrame({"n": [1]}))
        writer.write("k", pd.DataFrame({"n": ["not a number"]}))
    assert list(tmp_path.iterdir()) == []


def test_csv_from_chunks_has_one_header_and_every_row(tmp_path):
    chunks = [
        pd.DataFrame({"id": pd.Categorical(["a", "b"]), "n": [1, 2]}),
        pd.DataFrame({"id": pd.Categorical(["c"], categories=["z", "c"]), "n": [3]}),
    ]
    path = write_csv(iter(chunks), tmp_path / "chunks.csv")
    assert path.read_text().splitlines() == ['"id","n"', '"a",1', '"b",2', '"c",3']

"""A log read in chunks gives the raw table it gives read whole, and the checks about the whole file
still see the whole file."""

import pandas as pd
import pytest

from segmentation_pipeline import readers
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail import sources, synthetic
from segmentation_pipeline.config import CANONICAL_COLUMNS

IDENTITY = {name: (name if name in synthetic.TRANSACTION_COLUMNS else None) for name in CANONICAL_COLUMNS}
COLUMNS = {"customer_id": "customer", "timestamp": "when", "amount": "amount"}


def mapped_in_chunks(frame: pd.DataFrame, columns: dict, chunk_rows: int) -> pd.DataFrame:
    mapping = sources.ChunkedMapping(columns, None, "log.csv")
    chunks = [mapping.map(frame.iloc[start : start + chunk_rows].reset_index(drop=True))
              for start in range(0, len(frame), chunk_rows)]
    mapping.finish()
    return pd.concat(chunks, ignore_index=True)


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text: each chunk has its own categories, the values are what must agree."""
    return table.assign(**{c: table[c].astype(str) for c in table.select_dtypes("category").columns})


def test_a_parquet_log_read_in_row_batches_maps_like_the_whole_file(tmp_path):
    log = synthetic.generate(customers=120, months=3, seed=4).transactions
    path = tmp_path / "log.parquet"
    log.to_parquet(path, index=False)
    chunks = list(readers.iter_table_chunks(path, chunk_rows=200))
    assert len(chunks) == -(-len(log) // 200) > 2
    whole = sources.map_columns(log, IDENTITY, None, "log.parquet")
    mapping = sources.ChunkedMapping(IDENTITY, None, "log.parquet")
    in_chunks = pd.concat([mapping.map(chunk) for chunk in chunks], ignore_index=True)
    mapping.finish()
    assert in_chunks["source_row"].tolist() == list(range(len(log)))
    pd.testing.assert_frame_equal(comparable(in_chunks), comparable(whole))


def test_a_large_text_file_is_read_in_chunks_with_the_encoding_of_the_whole_file(tmp_path, monkeypatch):
    lines = ["customer;when;amount"] + [f"C{i % 7};2025-01-{1 + i % 28:02d};{i}" for i in range(2_500)]
    lines[-1] = "Zoë;2025-01-05;1"  # a cp1252 byte at the very end: the first chunks decode as UTF-8
    path = tmp_path / "log.csv"
    path.write_bytes("\n".join(lines).encode("cp1252"))
    monkeypatch.setattr(readers, "STREAM_TEXT_BYTES", 1_000)
    chunks = list(readers.iter_table_chunks(path, chunk_rows=1_000))
    assert [len(chunk) for chunk in chunks] == [1_000, 1_000, 500]
    assert chunks[-1]["customer"].iloc[-1] == "Zoë"
    assert chunks[0].attrs[readers.READ_INFO_ATTR]["encoding"] == "cp1252"


def test_whole_file_checks_see_every_chunk():
    """One customer per chunk is fine; one customer in the whole file is not."""
    two = pd.DataFrame({"customer": ["A", "A", "B", "B"], "when": ["2025-01-02"] * 4, "amount": ["1"] * 4})
    assert len(mapped_in_chunks(two, COLUMNS, chunk_rows=2)) == 4
    one = two.assign(customer="A")
    with pytest.raises(InputDataError, match="has 1 distinct customer"):
        mapped_in_chunks(one, COLUMNS, chunk_rows=2)
    empty_amounts = two.assign(amount=[None, None, None, None])
    with pytest.raises(InputDataError, match="mapped to amount.*is empty: none of its 4 cells"):
        mapped_in_chunks(empty_amounts, COLUMNS, chunk_rows=2)


def test_day_first_dates_seen_early_carry_to_chunks_with_only_ambiguous_dates():
    frame = pd.DataFrame({
        "customer": ["A", "B", "A", "B"],
        "when": ["25/01/2025", "13/02/2025", "03/04/2025", "05/06/2025"],  # the last chunk alone is ambiguous
        "amount": ["1", "2", "3", "4"],
    })
    table = mapped_in_chunks(frame, COLUMNS, chunk_rows=2)
    assert table["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2025-01-25", "2025-02-13", "2025-04-03", "2025-06-05"]


def test_a_chunk_contradicting_the_order_used_before_stops_with_a_clear_error():
    frame = pd.DataFrame({
        "customer": ["A", "B", "A", "B"],
        "when": ["03/04/2025", "05/06/2025", "01/13/2025", "02/14/2025"],  # month-first assumed, then shown
        "amount": ["1", "2", "3", "4"],
    })
    frame.loc[[0, 1], "when"] = ["25/01/2025", "13/02/2025"]  # now day-first is shown first
    with pytest.raises(InputDataError, match=r"dates written with '/' read day-first .*set transactions.timestamp_format"):
        mapped_in_chunks(frame, COLUMNS, chunk_rows=2)

"""The out-of-core engine (DuckDB over month files) gives the tables of the in-memory path: every
column of rfm, the basic and enriched features and the class spend, on the hand-made fixtures, on
generated logs and on the real Online Retail sample."""

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.cells import month_of
from segmentation_pipeline.config import load_config
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail import aggregates, features, rfm
from segmentation_pipeline.retail.cleaning import clean_transactions
from segmentation_pipeline.retail.transactions import load_raw, log_in_force
from segmentation_pipeline.storage import PartitionedParquetWriter
from segmentation_pipeline_tests.conftest import ONLINE_RETAIL_TRANSACTIONS, write_config
from segmentation_pipeline_tests.test_features import LOG

AS_OF = pd.Timestamp("2026-01-01")
MONEY_RTOL = 1e-12  # the engine sums money exactly, the in-memory path in float64 row order


def month_files(cleaned: pd.DataFrame, folder, chunk_rows: int = 1000) -> list:
    """The cleaned log as the pipeline stores it: one file per month, written in chunks."""
    months = month_of(cleaned["timestamp"])
    with PartitionedParquetWriter(lambda month: folder / f"{month}.parquet") as writer:
        for start in range(0, len(cleaned), chunk_rows):
            chunk = cleaned.iloc[start : start + chunk_rows]
            for month, rows in chunk.groupby(months.iloc[start : start + chunk_rows].to_numpy(), sort=False):
                writer.write(month, rows)
    return sorted(folder.glob("*.parquet"))


def in_memory(cleaned: pd.DataFrame, truth: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    table = rfm.compute_rfm(cleaned)
    basic = features.basic_features(cleaned, table)
    return {
        "rfm": table,
        "basic": basic,
        "enriched": features.enriched_features(cleaned, basic, truth),
        "class_spend": features.class_spend(cleaned, table["customer_id"]),
    }


def by_engine(files: list, truth: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    with aggregates.engine() as connection:
        log = aggregates.CleanedLog(connection, files)
        table = aggregates.rfm_table(log)
        basic = aggregates.basic_features(log, table)
        return {
            "rfm": table,
            "basic": basic,
            "enriched": aggregates.enriched_features(log, basic, truth),
            "class_spend": aggregates.class_spend(log, table["customer_id"]),
        }


def assert_same_tables(expected: dict, actual: dict) -> None:
    for name, frame in expected.items():
        other = actual[name]
        assert list(other.columns) == list(frame.columns), name
        assert len(other) == len(frame), name
        for column in frame.columns:
            left, right = frame[column], other[column]
            assert left.dtype == right.dtype, (name, column, left.dtype, right.dtype)
            if left.dtype.kind == "f":
                np.testing.assert_allclose(right.to_numpy(), left.to_numpy(), rtol=MONEY_RTOL, atol=1e-9, err_msg=f"{name}.{column}")
            else:
                assert right.isna().equals(left.isna()) and right[right.notna()].equals(left[left.notna()]), (name, column)


def test_engine_equals_in_memory_on_the_hand_made_log(tmp_path):
    cleaned = LOG
    assert_same_tables(in_memory(cleaned), by_engine(month_files(cleaned, tmp_path, chunk_rows=3)))


def test_engine_equals_in_memory_without_quantities_or_optional_columns(tmp_path):
    amount_only = LOG.assign(quantity=np.nan, unit_price=np.nan).drop(columns=["department", "product_class", "country"])
    expected = in_memory(amount_only)
    assert "units" not in expected["basic"] and expected["class_spend"].empty
    assert_same_tables(expected, by_engine(month_files(amount_only, tmp_path)))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated log, cleaned, with its ground truth, read as the pipeline reads it."""
    folder = tmp_path_factory.mktemp("generated")
    synthetic_settings = {"customers": 400, "months": 6, "seed": 5, "start_month": "2025-01"}
    config = load_config(write_config(folder, {"source": "synthetic", "synthetic": synthetic_settings}))
    raw = load_raw(log_in_force(config), folder / "cache", AS_OF)
    return clean_transactions(raw.table, as_of=AS_OF).cleaned, raw.customers


def test_engine_equals_in_memory_on_a_generated_log_with_ground_truth(tmp_path, generated):
    cleaned, truth = generated
    expected = in_memory(cleaned, truth)
    assert len(expected["rfm"]) > 300 and len(expected["class_spend"]) > len(expected["rfm"])
    assert_same_tables(expected, by_engine(month_files(cleaned, tmp_path, chunk_rows=7_000), truth))


def test_engine_totals_do_not_depend_on_row_order(tmp_path, generated):
    """Exact money sums: a shuffled log gives bit-identical tables (float sums in row order would not)."""
    cleaned, _ = generated
    shuffled = cleaned.sample(frac=1.0, random_state=3).reset_index(drop=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = by_engine(month_files(cleaned, tmp_path / "a"))
    second = by_engine(month_files(shuffled, tmp_path / "b"))
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)


def test_engine_refuses_a_log_without_purchases(tmp_path):
    returns_only = LOG[LOG["is_return"]].reset_index(drop=True)
    with pytest.raises(InputDataError, match="no purchase lines"):
        by_engine(month_files(returns_only, tmp_path))


def test_class_spend_by_cluster_sums_each_clusters_purchases(tmp_path):
    spend = features.class_spend(LOG, pd.Series(["A", "B"]))
    path = tmp_path / "spend.parquet"
    spend.to_parquet(path)
    table = aggregates.class_spend_by_cluster(path, ["B", "A", "Z"], [0, 1, 2])
    assert table.index.tolist() == [0, 1, 2]  # a cluster without class spend (Z) has a row of zeros
    assert table.columns.tolist() == ["Decor", "Kitchen", "Tools"]
    assert table.loc[1].tolist() == [20.0, 20.0, 5.0] and table.loc[0].tolist() == [0.0, 12.0, 0.0]
    assert table.loc[2].sum() == 0.0


def test_engine_equals_in_memory_on_the_online_retail_sample(online_retail, tmp_path):
    config = load_config(write_config(tmp_path, {**ONLINE_RETAIL_TRANSACTIONS, "path": str(online_retail)}))
    raw = load_raw(log_in_force(config), tmp_path / "cache", AS_OF).table
    cleaned = clean_transactions(raw, as_of=AS_OF, rules=config.transactions.cleaning_rules()).cleaned
    expected = in_memory(cleaned)
    assert len(expected["rfm"]) > 3000
    assert_same_tables(expected, by_engine(month_files(cleaned, tmp_path, chunk_rows=5_000)))


def test_class_spend_written_by_the_engine_equals_the_table_it_returns(tmp_path):
    folder = tmp_path / "it's here"  # a quote in the path must not break the engine's SQL
    folder.mkdir()
    files = month_files(LOG, folder)
    with aggregates.engine() as connection:
        log = aggregates.CleanedLog(connection, files)
        ids = pd.Series(["A", "B"])
        rows = aggregates.write_class_spend(log, ids, folder / "spend.parquet")
        expected = aggregates.class_spend(log, ids)
    assert rows == len(expected) == 4
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "spend.parquet"), expected)

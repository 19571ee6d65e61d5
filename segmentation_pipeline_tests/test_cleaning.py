"""Cleaning: every raw row ends up cleaned or rejected with exactly one reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.retail.cleaning import REJECT_REASONS, CleaningRules, clean_transactions
from segmentation_pipeline.retail.transactions import IDENTIFIER_COLUMNS
from segmentation_pipeline.readers import read_table
from segmentation_pipeline.retail.sources import map_columns
from segmentation_pipeline_tests.conftest import ONLINE_RETAIL_TRANSACTIONS

AS_OF = "2026-01-01"  # the run's date: every test log lies before it
ONLINE_RETAIL = Path(__file__).resolve().parents[2] / "shared/datasets/online_retail_sample.xlsx"
ITEMISED = {
    "invoice_id": "Invoice",
    "customer_id": "Customer",
    "timestamp": "Date",
    "quantity": "Qty",
    "unit_price": "Price",
    "description": "Item",
}


def raw_table(rows: list[tuple], mapping: dict = ITEMISED) -> pd.DataFrame:
    """Rows of (Invoice, Customer, Date, Qty, Price, Item) as a file gives them, mapped to the raw table."""
    export = pd.DataFrame(rows, columns=["Invoice", "Customer", "Date", "Qty", "Price", "Item"], dtype=object)
    return map_columns(export, mapping, None, source="test.csv")


def assert_every_row_once(raw: pd.DataFrame, result) -> None:
    assert len(result.cleaned) + len(result.rejected) == len(raw)
    cleaned_rows, rejected_rows = set(result.cleaned["source_row"]), set(result.rejected["source_row"])
    assert cleaned_rows.isdisjoint(rejected_rows)
    assert cleaned_rows | rejected_rows == set(raw["source_row"])
    assert sum(result.reason_counts.values()) == len(result.rejected)


def test_each_rule_names_its_reason_and_every_row_has_one_outcome():
    raw = raw_table(
        [
            ("1", "17850", "2010-12-01 08:26", "6", "2.55", "mug"),  # 0 valid
            ("2", "17850", "not a date", "6", "2.55", "mug"),  # 1
            ("3", None, "2010-12-01 08:26", "6", "2.55", "mug"),  # 2
            ("4", "13047", "2010-12-01 08:26", "lots", "2.55", "mug"),  # 3
            ("5", "13047", "2010-12-01 08:26", "0", "2.55", "mug"),  # 4
            ("6", "13047", "2010-12-01 08:26", "6", "", "mug"),  # 5
            ("7", "13047", "2010-12-01 08:26", "6", "0", "mug"),  # 6
            ("8", "13047", "2010-12-01 08:26", "6", "-1.5", "mug"),  # 7
            ("1", "17850", "2010-12-01 08:26", "6", "2.55", "mug"),  # 8 copy of row 0
            ("9", None, "garbage", "0", "0", "mug"),  # 9: the first failing rule wins
            ("10", "12583", "2010-12-02 10:00", "2", "1.25", "cup"),  # 10 valid
        ]
    )
    result = clean_transactions(raw, as_of=AS_OF)
    assert_every_row_once(raw, result)
    reasons = dict(zip(result.rejected["source_row"], result.rejected["reject_reason"]))
    assert reasons == {
        1: "unparseable_timestamp",
        2: "missing_customer",
        3: "unparseable_quantity",
        4: "zero_quantity",
        5: "unparseable_price",
        6: "non_positive_price",
        7: "non_positive_price",
        8: "duplicate",
        9: "unparseable_timestamp",
    }
    assert result.cleaned["source_row"].tolist() == [0, 10]
    assert list(result.reason_counts) == list(REJECT_REASONS)
    assert result.reason_counts["non_positive_price"] == 2 and result.reason_counts["missing_amount"] == 0


def test_rejected_rows_keep_every_raw_column_and_the_parse_errors():
    raw = raw_table([("1", "17850", "2010-12-01", "six", "2.55", "mug"), ("2", "13047", "2010-12-01", "6", "1", "cup")])
    result = clean_transactions(raw, as_of=AS_OF)
    assert list(result.rejected.columns) == list(raw.columns) + ["reject_reason"]
    assert result.rejected["parse_errors"].tolist() == ["quantity='six'"]
    assert result.rejected["description"].tolist() == ["mug"]


def test_returns_stay_in_cleaned_and_are_flagged():
    raw = raw_table(
        [
            ("536365", "17850", "2010-12-01 08:26", "6", "2.55", "mug"),
            ("C536379", "17850", "2010-12-01 09:41", "-2", "2.55", "mug"),
            ("536366", "13047", "2010-12-01 08:28", "1", "10", "cup"),
        ]
    )
    cleaned = clean_transactions(raw, as_of=AS_OF).cleaned
    assert cleaned["is_return"].tolist() == [False, True, False]
    assert cleaned["amount"].tolist() == pytest.approx([15.3, -5.1, 10.0])
    assert cleaned["invoice_id"].tolist() == ["536365", "C536379", "536366"]


def test_cleaned_table_follows_the_contract():
    raw = raw_table(
        [("1", "17850", "2010-12-01 08:26", "6", "2.55", "mug"), ("2", "13047", "2010-12-01", "1", "1", "cup")]
    )
    raw["Channel"] = ["web", "shop"]  # a column the mapping leaves alone
    cleaned = clean_transactions(raw, as_of=AS_OF).cleaned
    assert list(cleaned.columns) == [
        "source_row", "invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "amount", "is_return",
        "description", "Channel",
    ]  # fmt: skip
    assert cleaned["timestamp"].dtype == "datetime64[ns]"
    assert cleaned[["quantity", "unit_price", "amount"]].dtypes.tolist() == [np.float64] * 3
    assert cleaned["is_return"].dtype == bool
    assert cleaned["customer_id"].notna().all() and cleaned["invoice_id"].notna().all()


def test_logs_without_invoice_ids_get_one_per_customer_and_moment():
    mapping = {k: v for k, v in ITEMISED.items() if k != "invoice_id"}
    raw = raw_table(
        [
            (None, "17850", "2010-12-01 08:26", "6", "2.55", "mug"),
            (None, "17850", "2010-12-01 08:26", "1", "4.00", "cup"),
            (None, "13047", "2010-12-01 08:26", "2", "1.00", "mug"),
            (None, "17850", "2010-12-03 10:00:30", "1", "1.00", "mug"),
        ],
        mapping,
    )
    cleaned = clean_transactions(raw, as_of=AS_OF).cleaned
    assert cleaned["invoice_id"].tolist() == [
        "17850|2010-12-01T08:26:00",
        "17850|2010-12-01T08:26:00",
        "13047|2010-12-01T08:26:00",
        "17850|2010-12-03T10:00:30",
    ]


def test_blank_invoice_ids_are_filled_in():
    raw = raw_table(
        [("536365", "17850", "2010-12-01 08:26", "6", "2.55", "mug"), ("", "13047", "2010-12-02", "1", "1", "cup")]
    )
    cleaned = clean_transactions(raw, as_of=AS_OF).cleaned
    assert cleaned["invoice_id"].tolist() == ["536365", "13047|2010-12-02T00:00:00"]


def test_amount_only_log():
    export = pd.DataFrame(
        {
            "Customer": ["A", "A", "B", "B", "C"],
            "Date": ["2024-01-05", "2024-01-09", "2024-01-09", "2024-02-01", "2024-02-03"],
            "Total": ["19.99", "-5", "", "0", "7.50"],
        }
    )
    raw = map_columns(export, {"customer_id": "Customer", "timestamp": "Date", "amount": "Total"}, None, "pos.csv")
    result = clean_transactions(raw, as_of=AS_OF)
    assert_every_row_once(raw, result)
    assert result.rejected["reject_reason"].tolist() == ["missing_amount", "zero_amount"]
    cleaned = result.cleaned
    assert cleaned["amount"].tolist() == [19.99, -5.0, 7.5]
    assert cleaned["is_return"].tolist() == [False, True, False]
    assert cleaned["quantity"].isna().all() and cleaned["unit_price"].isna().all()
    assert cleaned["invoice_id"].tolist() == ["A|2024-01-05T00:00:00", "A|2024-01-09T00:00:00", "C|2024-02-03T00:00:00"]


def test_a_given_amount_is_kept_and_a_missing_one_computed():
    export = pd.DataFrame(
        {"Customer": ["A", "B"], "Date": ["2024-01-05", "2024-01-06"], "Qty": [2, 3], "Price": [5, 1.5]}
    ).assign(Net=[9, None])
    mapping = {"customer_id": "Customer", "timestamp": "Date", "quantity": "Qty", "unit_price": "Price"}
    mapping["amount"] = "Net"
    cleaned = clean_transactions(map_columns(export, mapping, None, "shop.csv"), as_of=AS_OF).cleaned
    assert cleaned["amount"].tolist() == [9.0, 4.5]


ROW = ("536365", "17850", "2010-12-01 08:26", "6", "2.55", "mug")
NEAR = ("536365", "17850", "2010-12-01 08:26", "6", "2.55", "cup")  # differs in one column


def test_duplicates_keep_the_first_copy_unless_switched_off():
    raw = raw_table([ROW, NEAR, ROW, ROW, ("2", "13047", "2010-12-02", "1", "1", "cup")])
    result = clean_transactions(raw, as_of=AS_OF)
    assert result.cleaned["source_row"].tolist() == [0, 1, 4]
    assert result.rejected["source_row"].tolist() == [2, 3]
    assert result.reason_counts["duplicate"] == 2
    kept = clean_transactions(raw, as_of=AS_OF, rules=CleaningRules(drop_exact_duplicates=False))
    assert len(kept.cleaned) == len(raw) and kept.rejected.empty


def test_rows_that_only_share_a_hash_are_not_duplicates(monkeypatch):
    monkeypatch.setattr(pd.util, "hash_pandas_object", lambda rows, index: pd.Series(np.zeros(len(rows), np.uint64)))
    raw = raw_table([ROW, NEAR, ROW, ("2", "13047", "2010-12-02", "1", "1", "cup")])
    assert clean_transactions(raw, as_of=AS_OF).rejected["source_row"].tolist() == [2]


def test_duplicates_are_found_on_categorical_codes_and_on_plain_text_alike():
    other_customer = ("536365", "12583", *ROW[2:])  # differs from ROW in its customer id only
    other_invoice = ("536366", *ROW[1:])  # and in its invoice id only
    raw = raw_table([ROW, NEAR, other_customer, ROW, other_invoice, ("2", "13047", "2010-12-02", "1", "1", "cup")])
    as_text = raw.assign(**{c: raw[c].astype("str") for c in ("invoice_id", "customer_id", "description")})
    for table in (raw, as_text):
        assert clean_transactions(table, as_of=AS_OF).rejected["source_row"].tolist() == [3]


def test_cleaned_text_columns_are_categorical_ids_may_stay_text_and_synthesized_invoices_join_the_given_ones():
    raw = raw_table(
        [
            ("9", "17850", "2010-12-01 08:26", "6", "2.55", "mug"),
            (None, "17850", "2010-12-01 09:00", "1", "2.55", "mug"),
            (None, "17850", "2010-12-01 09:00", "2", "1.00", "cup"),
            ("9", "13047", "2010-12-02 10:00", "1", "1", None),
        ]
    )
    expected_invoices = ["9", "17850|2010-12-01T09:00:00", "17850|2010-12-01T09:00:00", "9"]
    cleaned = clean_transactions(raw, as_of=AS_OF).cleaned
    for column in ("invoice_id", "customer_id", "description"):
        assert isinstance(cleaned[column].dtype, pd.CategoricalDtype)
    assert cleaned["invoice_id"].tolist() == expected_invoices and cleaned["invoice_id"].cat.categories.is_unique
    assert cleaned["description"].tolist()[:3] == ["mug", "mug", "cup"] and pd.isna(cleaned["description"].iloc[3])
    # Ids read back from a month file are plain text (`IDENTIFIER_COLUMNS`): they stay text, gaps filled.
    as_text = raw.assign(**{c: raw[c].astype("str").where(raw[c].notna()) for c in IDENTIFIER_COLUMNS})
    cleaned = clean_transactions(as_text, as_of=AS_OF).cleaned
    for column in IDENTIFIER_COLUMNS:
        assert isinstance(cleaned[column].dtype, pd.StringDtype) and cleaned[column].notna().all()
    assert cleaned["invoice_id"].tolist() == expected_invoices
    assert isinstance(cleaned["description"].dtype, pd.CategoricalDtype)


@pytest.fixture(scope="module")
def online_retail():
    if not ONLINE_RETAIL.is_file():
        pytest.skip(f"{ONLINE_RETAIL} is not available")
    mapping = ONLINE_RETAIL_TRANSACTIONS["columns"]
    raw = map_columns(read_table(ONLINE_RETAIL), mapping, None, source=ONLINE_RETAIL.name)
    return raw, clean_transactions(raw, as_of=AS_OF)


def test_online_retail_sample(online_retail):
    raw, result = online_retail
    assert len(raw) == 40_000 and raw["parse_errors"].isna().all()
    assert_every_row_once(raw, result)
    assert raw["customer_id"].dropna().str.fullmatch(r"\d{5}").all()  # 17850.0 in the workbook
    cleaned = result.cleaned
    # 674 cancellations; the ones with a customer, a positive price and no earlier copy stay as returns.
    assert cleaned["is_return"].sum() == 648
    assert cleaned["invoice_id"][cleaned["is_return"]].str.startswith("C").all()
    assert cleaned.loc[~cleaned["is_return"], "customer_id"].nunique() == 3_591
    assert {k: v for k, v in result.reason_counts.items() if v} == {
        "missing_customer": 10_057,
        "non_positive_price": 3,
        "duplicate": 28,
    }
    # README: 29,292 rows with a customer, quantity > 0 and price > 0, before removing the 28 copies.
    assert (~cleaned["is_return"]).sum() == 29_292 - 28


def test_cleaned_rows_keep_the_inbox_file_they_came_from():
    raw = raw_table([("1", "C1", "2010-01-04", "1", "2", "a"), ("2", "C2", "2010-01-05", "1", "2", "b")])
    cleaned = clean_transactions(raw.assign(source_file=["a.csv", "b.csv"]), as_of="2030-01-01").cleaned
    assert cleaned["source_file"].tolist() == ["a.csv", "b.csv"] and "parse_errors" not in cleaned.columns

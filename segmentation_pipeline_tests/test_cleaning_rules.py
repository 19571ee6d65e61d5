"""Cleaning against hostile input: implausible dates, placeholder customers, absurd values, amounts that
disagree with quantity x price; every raw row accounted for (property-based), and the rejected-share checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation_pipeline.config import ColumnMapping, TransactionsSettings
from segmentation_pipeline.retail.cleaning import (
    REJECT_REASONS,
    TIMESTAMP_REASONS,
    CleaningRules,
    clean_transactions,
    rejected_reasons_summary,
    transaction_months,
)
from segmentation_pipeline.retail.sources import map_columns
from segmentation_pipeline.retail.transactions import MONTH_COLUMN, TransactionLog, data_months, load_raw
from segmentation_pipeline.retail.validation import (
    amount_agreement_warnings,
    rejected_reason_warnings,
    rejected_share_problems,
)

AS_OF = "2025-06-30"
MAPPING = {"customer_id": "Customer", "timestamp": "Date", "quantity": "Qty", "unit_price": "Price"}


def raw_log(rows: list[tuple], mapping: dict = MAPPING, **extra) -> pd.DataFrame:
    columns = ["Customer", "Date", "Qty", "Price"][: len(rows[0])]
    export = pd.DataFrame(rows, columns=columns, dtype=object).assign(**extra)
    return map_columns(export, mapping, None, source="hostile.csv")


def reasons_of(result) -> dict[int, str]:
    return dict(zip(result.rejected["source_row"], result.rejected["reject_reason"]))


def test_dates_before_the_floor_or_after_the_run_date_are_rejected_and_make_no_month():
    raw = raw_log(
        [
            ("A", "2025-06-30 23:59", "1", "2"),  # 0: the run's own day is valid
            ("A", "2025-07-01 00:00", "1", "2"),  # 1: the next day is the future
            ("B", "2099-01-01", "1", "2"),  # 2
            ("B", "1900-01-01", "1", "2"),  # 3: a placeholder date
            ("B", "1989-12-31", "1", "2"),  # 4: before the default floor
            ("C", "1990-01-01", "1", "2"),  # 5: on the floor
        ]
    )
    result = clean_transactions(raw, as_of=AS_OF)
    assert reasons_of(result) == {
        1: "future_timestamp",
        2: "future_timestamp",
        3: "implausible_timestamp",
        4: "implausible_timestamp",
    }
    months = transaction_months(raw["timestamp"], AS_OF, CleaningRules())
    assert months.tolist()[:1] == ["2025-06"] and months.iloc[1:5].isna().all() and months.iloc[5] == "1990-01"
    later_floor = CleaningRules(earliest_timestamp=pd.Timestamp("2000-01-01"))
    assert reasons_of(clean_transactions(raw, as_of=AS_OF, rules=later_floor))[5] == "implausible_timestamp"


def test_a_time_zoned_run_date_is_compared_in_utc():
    raw = raw_log([("A", "2025-06-30 12:00", "1", "2"), ("B", "2025-07-01 12:00", "1", "2")])
    as_of = pd.Timestamp("2025-07-01 01:00", tz="Europe/Paris")  # 2025-06-30 23:00 UTC
    assert reasons_of(clean_transactions(raw, as_of=as_of)) == {1: "future_timestamp"}


@pytest.mark.parametrize("placeholder", ["unknown", "UNKNOWN", " Unknown ", "-", "n/a", "N/A", "null", "None", "0",
                                         "0.0", "nan"])
def test_placeholder_customer_ids_are_missing_customers(placeholder):
    raw = raw_log([("A", "2025-01-01", "1", "2"), (placeholder, "2025-01-02", "1", "2"), ("B", "2025-01-03", "1", "2")])
    assert reasons_of(clean_transactions(raw, as_of=AS_OF)) == {1: "missing_customer"}


def test_the_placeholder_list_is_configurable():
    rows = [("A", "2025-01-01", "1", "2"), ("unknown", "2025-01-02", "1", "2"), ("Guest", "2025-01-03", "1", "2")]
    raw = raw_log(rows)
    rules = CleaningRules(placeholder_customer_ids=("guest",))
    assert reasons_of(clean_transactions(raw, as_of=AS_OF, rules=rules)) == {2: "missing_customer"}


def test_infinite_and_absurd_values_are_implausible():
    export = pd.DataFrame(
        {
            "Customer": ["A", "B", "C", "D", "E", "F"],
            "Date": ["2025-01-01"] * 6,
            "Qty": [1.0, np.inf, 1e300, 2.0, 1.0, -1e10],
            "Price": [2.0, 1.0, 1e300, 1e300, 999_999_999.0, 1.0],
        }
    )
    raw = map_columns(export, MAPPING, None, source="hostile.parquet")
    result = clean_transactions(raw, as_of=AS_OF)
    assert reasons_of(result) == {i: "implausible_value" for i in (1, 2, 3, 5)}
    assert np.isfinite(result.cleaned["amount"]).all()
    small_cap = CleaningRules(max_line_amount=100.0)
    assert set(reasons_of(clean_transactions(raw, as_of=AS_OF, rules=small_cap))) == {1, 2, 3, 4, 5}


def test_an_amount_only_log_caps_its_amounts():
    export = pd.DataFrame({"Customer": ["A", "B", "C"], "Date": ["2025-01-01"] * 3, "Total": [10.0, 1e300, -np.inf]})
    raw = map_columns(export, {"customer_id": "Customer", "timestamp": "Date", "amount": "Total"}, None, "pos.csv")
    assert reasons_of(clean_transactions(raw, as_of=AS_OF)) == {1: "implausible_value", 2: "implausible_value"}


def test_given_amounts_win_and_disagreements_are_counted():
    rows = [("A", "2025-01-01", "2", "5"), ("B", "2025-01-02", "3", "1.5"), ("C", "2025-01-03", "1", "10"),
            ("D", "2025-01-04", "4", "2.499")]  # fmt: skip
    raw = raw_log(rows, {**MAPPING, "amount": "Net"}, Net=["9", None, "10", "10"])
    result = clean_transactions(raw, as_of=AS_OF)
    assert result.cleaned["amount"].tolist() == [9.0, 4.5, 10.0, 10.0]  # a given amount wins, a missing one is computed
    agreement = result.amount_agreement
    assert (agreement.compared_rows, agreement.disagreeing_rows) == (3, 1)  # 9 vs 10 (10%); 10 vs 9.996 is rounding
    assert agreement.examples == ("source row 0: amount 9 vs quantity x unit_price 2 x 5 = 10",)
    [warning] = amount_agreement_warnings(agreement)
    assert warning.startswith("1 of 3 lines (33.3%) have an amount that differs")
    assert "the given amount is used" in warning
    loose = clean_transactions(raw, as_of=AS_OF, rules=CleaningRules(amount_mismatch_tolerance=0.2))
    assert loose.amount_agreement.disagreeing_rows == 0 and amount_agreement_warnings(loose.amount_agreement) == []


def test_summary_names_the_top_reasons_with_the_values_that_failed():
    rows = [(f"C{i}", f"2025-01-{1 + i % 28:02d}", "1", "2") for i in range(90)]
    rows += [("unknown", "2025-01-05", "1", "2")] * 6 + [("X", "31/02/2025", "1", "2")] * 3
    rows += [("Y", "2099-01-01", "1", "2")]
    raw = raw_log(rows)
    result = clean_transactions(raw, as_of=AS_OF)
    summary = rejected_reasons_summary(result.rejected, len(raw))
    assert [(r.reason, r.rows) for r in summary] == [
        ("missing_customer", 6), ("unparseable_timestamp", 3), ("future_timestamp", 1),
    ]  # fmt: skip
    assert summary[0].examples == ("customer_id='unknown'",) and summary[0].share == pytest.approx(0.06)
    assert summary[1].examples == ("timestamp='31/02/2025'",)
    assert summary[2].examples == ("timestamp=2099-01-01 00:00:00",)
    [problem] = rejected_share_problems(summary, len(raw), max_rejected_share=0.05)
    assert problem.startswith("10.0% of 100 raw rows were rejected, more than max_rejected_share 5.0%")
    assert "missing_customer: 6 rows (6.0%), e.g. customer_id='unknown'" in problem
    assert rejected_share_problems(summary, len(raw), max_rejected_share=0.10) == []
    warnings = rejected_reason_warnings(summary, 0.02)
    assert [w.split(":")[0] for w in warnings] == ["missing_customer", "unparseable_timestamp"]
    assert rejected_reasons_summary(result.rejected.head(0), len(raw)) == []


# --------------------------------------------------------------------------- every row accounted for

TIMESTAMPS = st.one_of(
    st.none(),
    st.datetimes(min_value=pd.Timestamp("1800-01-01"), max_value=pd.Timestamp("2200-01-01")),
    st.sampled_from([pd.Timestamp("2025-06-30 23:59:59"), pd.Timestamp("2025-07-01"), pd.Timestamp("1990-01-01")]),
)
CUSTOMERS = st.one_of(st.none(), st.sampled_from(["A", "b", "17850", "unknown", "N/A", "0", "-", "none"]))
NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, 2.5, 1e300, -1e300]),
)


@st.composite
def raw_tables(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))
    column = lambda values: draw(st.lists(values, min_size=n, max_size=n))  # noqa: E731
    table = pd.DataFrame(
        {
            "source_row": np.arange(n, dtype=np.int64),
            "customer_id": pd.Series(column(CUSTOMERS), dtype="str").astype("category"),
            "timestamp": pd.Series(column(TIMESTAMPS), dtype="datetime64[ns]"),
        }
    )
    layout = draw(st.sampled_from(["itemised", "amount", "both"]))
    if layout != "amount":
        table["quantity"] = pd.Series(column(NUMBERS), dtype=np.float64)
        table["unit_price"] = pd.Series(column(NUMBERS), dtype=np.float64)
    if layout != "itemised":
        table["amount"] = pd.Series(column(NUMBERS), dtype=np.float64)
    if draw(st.booleans()):  # exact copies of earlier rows
        table = pd.concat([table, table.sample(frac=0.5, random_state=0)], ignore_index=True)
        table["source_row"] = np.arange(len(table))
    return table


@settings(max_examples=150, deadline=None)
@given(raw_tables(), st.booleans())
def test_every_raw_row_is_cleaned_or_rejected_exactly_once(raw, drop_duplicates):
    rules = CleaningRules(drop_exact_duplicates=drop_duplicates)
    result = clean_transactions(raw, as_of=AS_OF, rules=rules)
    cleaned, rejected = result.cleaned["source_row"], result.rejected["source_row"]
    assert len(cleaned) + len(rejected) == len(raw)
    assert sorted([*cleaned, *rejected]) == raw["source_row"].tolist()
    assert sum(result.reason_counts.values()) == len(rejected) and list(result.reason_counts) == list(REJECT_REASONS)
    assert np.isfinite(result.cleaned["amount"]).all()
    # The rows without a month are exactly the rows rejected for their timestamp.
    months = transaction_months(raw["timestamp"], AS_OF, rules)
    reasons = pd.Series(result.rejected["reject_reason"].to_numpy(), index=rejected.to_numpy())
    timestamp_rejects = set(reasons[reasons.isin(TIMESTAMP_REASONS)].index)
    assert set(raw["source_row"][months.isna().to_numpy()]) == timestamp_rejects
    summary = rejected_reasons_summary(result.rejected, len(raw))
    assert sum(r.rows for r in summary) == len(rejected)


def test_the_raw_table_and_the_months_leave_out_dates_that_cleaning_rejects(tmp_path):
    path = tmp_path / "log.csv"
    lines = ["Customer,Date,Qty,Price", "A,2025-05-02,1,2", "B,2099-01-01,1,2", "C,1900-01-01,1,2", "D,soon,1,2",
             "E,2025-06-01,1,2"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    columns = ColumnMapping(customer_id="Customer", timestamp="Date", quantity="Qty", unit_price="Price",
                            invoice_id=None, product_id=None, description=None, country=None)  # fmt: skip
    log = TransactionLog(TransactionsSettings(source="file", path=str(path), columns=columns), (path,), False)
    raw = load_raw(log, tmp_path / "cache", as_of=AS_OF).table
    assert raw[MONTH_COLUMN].tolist()[:1] == ["2025-05"] and raw[MONTH_COLUMN].iloc[1:4].isna().all()
    assert data_months(log, tmp_path / "cache", as_of=AS_OF) == ["2025-05", "2025-06"]
    assert data_months(log, tmp_path / "cache", as_of="2025-05-31") == ["2025-05"]

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.rfm import (
    RFM_COLUMNS,
    SEGMENT_DESCRIPTIONS,
    compute_rfm,
    quintile_scores,
    segment_for,
)
from segmentation_pipeline_tests.conftest import cleaned_log


def make_log(lines):
    """Cleaned log from (invoice, customer, timestamp, quantity, unit_price) tuples."""
    return cleaned_log(lines, ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price"])


SMALL_LOG = [
    ("1", "A", "2024-01-01 10:00", 2, 10.0),
    ("1", "A", "2024-01-01 10:00", 1, 5.0),
    ("2", "A", "2024-01-10 09:00", 1, 20.0),
    ("R1", "A", "2024-01-12 12:00", -1, 5.0),
    ("3", "B", "2024-01-05 18:30", 3, 4.0),
    ("R2", "C", "2024-01-15 23:59", -2, 3.0),  # C only returns; last line of the log
]


def random_log(n_lines=3000, n_customers=200, seed=7):
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, n_customers, n_lines)
    invoices = rng.integers(0, n_lines // 3, n_lines)
    quantity = rng.integers(1, 6, n_lines) * np.where(rng.random(n_lines) < 0.05, -1, 1)
    lines = [
        (f"INV{inv}-{cust}", f"C{cust:04d}", f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}", q, price)
        for inv, cust, day, q, price in zip(
            invoices, customers, rng.integers(0, 300, n_lines), quantity, rng.uniform(1, 30, n_lines).round(2)
        )
    ]
    return make_log(lines)


def test_rfm_values_by_hand():
    rfm = compute_rfm(make_log(SMALL_LOG))
    assert list(rfm.columns) == RFM_COLUMNS
    assert rfm["customer_id"].tolist() == ["A", "B"]
    a, b = rfm.iloc[0], rfm.iloc[1]
    # Reference: midnight after the last line (C's return on 01-15 23:59) = 2024-01-16.
    assert a["recency_days"] == 6 and b["recency_days"] == 11
    assert a["first_purchase"] == pd.Timestamp("2024-01-01 10:00")
    assert a["last_purchase"] == pd.Timestamp("2024-01-10 09:00")
    assert a["frequency"] == 2 and b["frequency"] == 1
    assert a["monetary"] == pytest.approx(45.0) and b["monetary"] == pytest.approx(12.0)
    assert a["monetary_net"] == pytest.approx(40.0) and b["monetary_net"] == pytest.approx(12.0)
    assert rfm["recency_days"].dtype == np.int64 and rfm["frequency"].dtype == np.int64


def test_explicit_reference_date_counts_calendar_days():
    rfm = compute_rfm(make_log(SMALL_LOG), reference_date=pd.Timestamp("2024-02-01"))
    assert rfm.set_index("customer_id")["recency_days"].to_dict() == {"A": 22, "B": 27}


def test_reference_date_is_midnight_after_the_last_line():
    log = make_log([("1", "A", "2024-03-05 00:01", 1, 1.0), ("2", "B", "2024-03-09 23:59", 1, 1.0)])
    rfm = compute_rfm(log).set_index("customer_id")
    assert rfm.loc["B", "recency_days"] == 1  # bought on the last day
    assert rfm.loc["A", "recency_days"] == 5


def test_returns_are_not_orders_and_reduce_net_value():
    log = make_log(
        [
            ("1", "A", "2024-01-01", 4, 10.0),
            ("1", "A", "2024-01-01", -1, 10.0),  # return inside a purchase invoice: still one order
            ("R", "A", "2024-01-02", -2, 10.0),  # return-only invoice: no order
        ]
    )
    row = compute_rfm(log).iloc[0]
    assert row["frequency"] == 1
    assert row["monetary"] == pytest.approx(40.0)
    assert row["monetary_net"] == pytest.approx(10.0)
    assert row["last_purchase"] == pd.Timestamp("2024-01-01")


def test_customers_with_only_returns_are_excluded():
    rfm = compute_rfm(make_log(SMALL_LOG))
    assert "C" not in set(rfm["customer_id"])


def test_invoice_shared_by_customers_counts_for_each():
    log = make_log(
        [("1", "A", "2024-01-01", 1, 1.0), ("1", "B", "2024-01-01", 1, 1.0), ("2", "A", "2024-01-02", 1, 1.0)]
    )
    assert compute_rfm(log).set_index("customer_id")["frequency"].to_dict() == {"A": 2, "B": 1}


def test_no_purchases_is_a_clear_error():
    log = make_log([("R1", "A", "2024-01-01", -1, 5.0)])
    with pytest.raises(ValueError, match="no purchase lines"):
        compute_rfm(log)
    with pytest.raises(InputDataError, match="no purchase lines"):
        compute_rfm(log.iloc[0:0])


def test_missing_column_and_missing_customer_are_named():
    log = make_log(SMALL_LOG)
    with pytest.raises(InputDataError, match="invoice_id"):
        compute_rfm(log.drop(columns="invoice_id"))
    log.loc[0, "customer_id"] = None
    with pytest.raises(InputDataError, match="customer_id"):
        compute_rfm(log)


def test_equal_values_get_equal_scores_and_a_tied_bin_stays_empty():
    assert quintile_scores(np.ones(10)).tolist() == [3] * 10
    scores = quintile_scores(np.array([9, 1, 1, 3, 1, 1, 1, 2, 3, 1, 9, 9]))
    assert scores.tolist() == [5, 2, 2, 4, 2, 2, 2, 3, 4, 2, 5, 5]  # six 1s: the middle of bins 1..3


def test_distinct_values_fill_the_bins_equally():
    scores = quintile_scores(np.random.default_rng(0).permutation(100))
    assert np.bincount(scores).tolist() == [0, 20, 20, 20, 20, 20]


@pytest.mark.parametrize(
    ("n", "expected"), [(1, [3]), (2, [2, 4]), (3, [1, 3, 5]), (4, [1, 2, 4, 5])]
)
def test_fewer_than_five_values_are_spread_over_one_to_five(n, expected):
    assert quintile_scores(np.arange(n) * 10.0).tolist() == expected


def test_scores_on_log_use_all_bins_and_recency_is_reversed():
    rfm = compute_rfm(random_log())
    for column in ("r_score", "f_score", "m_score"):
        assert sorted(rfm[column].unique()) == [1, 2, 3, 4, 5]
    best = rfm.loc[rfm["r_score"] == 5, "recency_days"].max()
    worst = rfm.loc[rfm["r_score"] == 1, "recency_days"].min()
    assert best <= worst
    assert (rfm["rfm_score"] == rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)).all()


def expected_segment(r, f):
    """The classic R x F map, written out as rules (independent of the module's table)."""
    if r <= 2:
        return "hibernating" if f <= 2 else "at_risk" if f <= 4 else "cant_lose"
    if r == 3:
        return "about_to_sleep" if f <= 2 else "need_attention" if f == 3 else "loyal_customers"
    if f == 1:
        return "promising" if r == 4 else "new_customers"
    if f <= 3:
        return "potential_loyalists"
    return "loyal_customers" if r == 4 else "champions"


@pytest.mark.parametrize("r", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("f", [1, 2, 3, 4, 5])
def test_segment_grid(r, f):
    assert list(segment_for(np.array([r]), np.array([f]))) == [expected_segment(r, f)]


def test_segment_descriptions_cover_the_grid():
    names = {expected_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(SEGMENT_DESCRIPTIONS)
    assert all(text.strip() for text in SEGMENT_DESCRIPTIONS.values())


def test_every_customer_gets_a_known_segment():
    rfm = compute_rfm(random_log())
    assert rfm["segment"].notna().all()
    assert set(rfm["segment"]) <= set(SEGMENT_DESCRIPTIONS)
    expected = [expected_segment(r, f) for r, f in zip(rfm["r_score"], rfm["f_score"])]
    assert rfm["segment"].tolist() == expected


def test_sorted_by_customer_with_fresh_index():
    rfm = compute_rfm(random_log())
    assert rfm["customer_id"].is_monotonic_increasing and rfm["customer_id"].is_unique
    assert rfm.index.equals(pd.RangeIndex(len(rfm)))


def test_deterministic_and_independent_of_row_order():
    log = random_log()
    shuffled = log.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(compute_rfm(log), compute_rfm(log))
    pd.testing.assert_frame_equal(compute_rfm(log), compute_rfm(shuffled))


@pytest.mark.parametrize("reverse", [True, False])
def test_categorical_columns_give_the_same_table(reverse):
    log = random_log()
    categorical = log.copy()
    for column in ("customer_id", "invoice_id"):
        values = sorted(log[column].unique(), reverse=reverse)  # category order must not matter
        categorical[column] = pd.Categorical(log[column], categories=values + ["unused"])
    pd.testing.assert_frame_equal(compute_rfm(log), compute_rfm(categorical))


def test_microsecond_timestamps():
    log = make_log(SMALL_LOG)
    log["timestamp"] = log["timestamp"].astype("datetime64[us]")
    rfm = compute_rfm(log)
    assert rfm["recency_days"].tolist() == [6, 11]
    assert rfm["last_purchase"].iloc[0] == pd.Timestamp("2024-01-10 09:00")


def cdnow_like_log(seed=11, n_customers=400):
    """Half the customers bought once; the others 2..12 orders over 18 months."""
    rng = np.random.default_rng(seed)
    orders = np.where(np.arange(n_customers) < n_customers // 2, 1, rng.integers(2, 13, n_customers))
    lines = []
    for customer, count in enumerate(orders):
        for order in range(count):
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 540)))
            lines.append((f"{customer}-{order}", f"C{customer:04d}", str(day), 1, float(rng.choice([10, 20, 35]))))
    return make_log(lines)


SCORES = ["r_score", "f_score", "m_score", "segment"]


@pytest.mark.parametrize("log", [cdnow_like_log(), cdnow_like_log().assign(timestamp=pd.Timestamp("2025-03-01"))],
                         ids=["cdnow-like", "one-timestamp"])  # fmt: skip
def test_shuffling_rows_and_relabelling_customers_changes_no_score(log):
    rng = np.random.default_rng(5)
    ids = log["customer_id"].unique()
    new_ids = dict(zip(ids, [f"Z{n:05d}" for n in rng.permutation(len(ids))]))  # a different id order
    shuffled = log.sample(frac=1.0, random_state=9).reset_index(drop=True)
    shuffled["customer_id"] = shuffled["customer_id"].map(new_ids)
    before = compute_rfm(log).set_index("customer_id")[SCORES]
    after = compute_rfm(shuffled).assign(customer_id=lambda t: t["customer_id"].map({v: k for k, v in new_ids.items()}))
    pd.testing.assert_frame_equal(before, after.set_index("customer_id")[SCORES].loc[before.index])


def test_equal_customers_get_equal_scores():
    rfm = compute_rfm(cdnow_like_log())
    one_time = rfm[rfm["frequency"] == 1]
    assert len(one_time) == 200 and one_time["f_score"].nunique() == 1
    for _, group in rfm.groupby(["recency_days", "frequency", "monetary"]):
        assert group[SCORES].nunique().max() == 1
    same_moment = compute_rfm(cdnow_like_log().assign(timestamp=pd.Timestamp("2025-03-01")))
    assert set(same_moment["r_score"]) == {3}
    for _, group in same_moment.groupby(["frequency", "monetary"]):
        assert group["segment"].nunique() == 1

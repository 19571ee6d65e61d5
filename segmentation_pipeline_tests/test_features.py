import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.features import (
    BASIC_NUMERIC_FEATURES,
    DAYS_PER_MONTH,
    basic_features,
    class_spend,
    department_columns,
    enriched_features,
    is_basic_feature,
    prefixed_columns,
)
from segmentation_pipeline.retail.rfm import RFM_COLUMNS, compute_rfm
from segmentation_pipeline_tests.conftest import cleaned_log

COLUMNS = ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "department", "product_class",
           "product_id", "country"]


def make_log(lines):
    """Cleaned log from (invoice, customer, timestamp, quantity, unit_price, department, class, product, country)."""
    return cleaned_log(lines, COLUMNS)


LOG = make_log(
    [
        ("1", "A", "2024-01-01 12:00", 2, 10.0, "Home", "Kitchen", "P1", "France"),
        ("1", "A", "2024-01-01 12:00", 1, 5.0, "Garden", "Tools", "P2", "France"),
        ("2", "A", "2024-01-10 09:00", 1, 20.0, "Home", "Decor", "P1", "United Kingdom"),
        ("R1", "A", "2024-01-12 12:00", -1, 5.0, "Garden", "Tools", "P2", "United Kingdom"),
        ("3", "B", "2023-10-01 08:00", 3, 4.0, "Home", "Kitchen", "P3", "Germany"),
        ("4", "B", "2023-12-01 08:00", 1, 6.0, None, None, "P3", "Germany"),
        ("R2", "B", "2024-01-02 08:00", -5, 10.0, "Home", "Kitchen", "P3", "Germany"),  # returns > purchases
        ("R3", "C", "2024-01-15 10:00", -2, 3.0, "Home", "Kitchen", "P4", "Spain"),  # only returns
    ]
)
REFERENCE = pd.Timestamp("2024-01-16")


def features_of(log):
    return basic_features(log, compute_rfm(log)).set_index("customer_id")


def all_features(log):
    return enriched_features(log, basic_features(log, compute_rfm(log)))


def test_basic_features_by_hand():
    features = features_of(LOG)
    assert features.index.tolist() == ["A", "B"]
    a, b = features.loc["A"], features.loc["B"]
    assert a["avg_order_value"] == pytest.approx(45.0 / 2)
    assert b["avg_order_value"] == pytest.approx(18.0 / 2)
    tenure_a = (REFERENCE - pd.Timestamp("2024-01-01 12:00")) / pd.Timedelta(days=1) / DAYS_PER_MONTH
    tenure_b = (REFERENCE - pd.Timestamp("2023-10-01 08:00")) / pd.Timedelta(days=1) / DAYS_PER_MONTH
    assert a["tenure_months"] == pytest.approx(tenure_a) and tenure_a < 1
    assert b["tenure_months"] == pytest.approx(tenure_b)
    assert a["orders_per_month"] == pytest.approx(2.0)  # tenure under a month counts as one month
    assert b["orders_per_month"] == pytest.approx(2 / tenure_b)
    assert a["return_rate"] == pytest.approx(5.0 / 45.0)
    assert b["return_rate"] == 1.0  # returned 50 of 18 bought: clipped
    assert a["returns_count"] == 1 and b["returns_count"] == 1
    assert a["units"] == 4 and b["units"] == 4


def test_basic_keeps_rfm_columns_rows_and_order():
    rfm = compute_rfm(LOG)
    basic = basic_features(LOG, rfm)
    assert list(basic.columns[: len(RFM_COLUMNS)]) == RFM_COLUMNS
    pd.testing.assert_frame_equal(basic[RFM_COLUMNS], rfm)


def test_department_pivot():
    features = features_of(LOG)
    assert department_columns(features) == {"Garden": "dept_value:Garden", "Home": "dept_value:Home"}
    assert prefixed_columns(features, "dept_units:") == {"Garden": "dept_units:Garden", "Home": "dept_units:Home"}
    assert features.loc["A", "dept_value:Home"] == pytest.approx(40.0)
    assert features.loc["A", "dept_value:Garden"] == pytest.approx(5.0)  # the Garden return does not count
    assert features.loc["B", "dept_value:Home"] == pytest.approx(12.0)  # the line without department is left out
    assert features.loc["B", "dept_value:Garden"] == 0.0
    assert features.loc["A", "dept_units:Home"] == 3 and features.loc["A", "dept_units:Garden"] == 1


def test_no_nulls_in_numeric_columns():
    for table in (basic_features(LOG, compute_rfm(LOG)), all_features(LOG)):
        numeric = table.select_dtypes("number")
        assert len(numeric.columns) > 10
        assert not numeric.isna().any().any()
        assert np.isfinite(numeric.to_numpy(dtype=float)).all()


def test_log_without_departments_or_quantities():
    log = LOG.drop(columns=["department", "product_class", "product_id", "country"])
    features = features_of(log)
    assert department_columns(features) == {}
    assert features.loc["A", "units"] == 4
    amount_only = log.assign(quantity=np.nan, unit_price=np.nan)
    features = features_of(amount_only)
    assert "units" not in features.columns
    assert features.loc["A", "avg_order_value"] == pytest.approx(22.5)


def test_enriched_country_and_products():
    basic = basic_features(LOG, compute_rfm(LOG))
    enriched = enriched_features(LOG, basic)
    assert enriched["customer_id"].tolist() == basic["customer_id"].tolist()
    pd.testing.assert_frame_equal(enriched[basic.columns], basic)
    enriched = enriched.set_index("customer_id")
    assert not any(column.startswith("class_value:") for column in enriched.columns)
    assert enriched.loc["A", "distinct_products"] == 2 and enriched.loc["B", "distinct_products"] == 1
    assert enriched.loc["B", "country"] == "Germany"
    assert not any(column.startswith("true_") for column in enriched.columns)


def test_class_spend_is_long_purchases_only_and_only_of_the_given_customers():
    spend = class_spend(LOG, pd.Series(["A", "B"]))
    assert list(spend.columns) == ["customer_id", "product_class", "value"]
    as_dict = {(row.customer_id, row.product_class): row.value for row in spend.itertuples()}
    # A's Tools return and B's Kitchen return are not purchases; C (returns only) is not a given customer
    assert as_dict == {("A", "Decor"): 20.0, ("A", "Kitchen"): 20.0, ("A", "Tools"): 5.0, ("B", "Kitchen"): 12.0}
    assert class_spend(LOG.drop(columns="product_class"), pd.Series(["A"])).empty


def test_country_majority_wins_and_ties_go_to_the_first_name():
    log = make_log(
        [
            ("1", "A", "2024-01-01", 1, 1.0, "Home", "K", "P1", "United Kingdom"),
            ("2", "A", "2024-01-02", 1, 1.0, "Home", "K", "P1", "France"),
            ("3", "A", "2024-01-03", 1, 1.0, "Home", "K", "P1", "United Kingdom"),
            ("4", "B", "2024-01-01", 1, 1.0, "Home", "K", "P1", "United Kingdom"),
            ("5", "B", "2024-01-02", 1, 1.0, "Home", "K", "P1", "France"),
        ]
    )
    for rows in (log, log.iloc[::-1]):
        enriched = all_features(rows).set_index("customer_id")
        assert enriched["country"].to_dict() == {"A": "United Kingdom", "B": "France"}


def test_ground_truth_joined_with_prefix():
    basic = basic_features(LOG, compute_rfm(LOG))
    truth = pd.DataFrame(
        {"customer_id": ["B", "A", "Z"], "persona": ["bargain", "family", "x"], "name": ["Bo", "Al", "Zed"],
         "age": [41, 35, 20]}
    )
    enriched = enriched_features(LOG, basic, customers=truth)
    assert enriched["customer_id"].tolist() == ["A", "B"]
    assert enriched["true_persona"].tolist() == ["family", "bargain"]
    assert enriched["true_name"].tolist() == ["Al", "Bo"]
    assert enriched["true_age"].tolist() == [35, 41]
    assert "true_customer_id" not in enriched.columns

    partial = enriched_features(LOG, basic, customers=truth.iloc[[0]]).set_index("customer_id")
    assert partial.loc["B", "true_persona"] == "bargain" and pd.isna(partial.loc["A", "true_persona"])

    with pytest.raises(InputDataError, match="duplicate"):
        enriched_features(LOG, basic, customers=pd.concat([truth, truth]))


def random_log(n_lines=4000, n_customers=150, seed=11):
    rng = np.random.default_rng(seed)
    cust = rng.integers(0, n_customers, n_lines)
    quantity = rng.integers(1, 5, n_lines) * np.where(rng.random(n_lines) < 0.05, -1, 1)
    departments = np.array(["Home", "Garden", "Toys", None], dtype=object)
    return make_log(
        [
            (f"I{inv}-{c}", f"C{c:03d}", f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}", q, p,
             departments[d], f"K{d}{k}", f"P{prod}", ["France", "Spain"][c % 2])
            for inv, c, day, q, p, d, k, prod in zip(
                rng.integers(0, 1200, n_lines), cust, rng.integers(0, 200, n_lines), quantity,
                rng.uniform(1, 20, n_lines).round(2), rng.integers(0, 4, n_lines), rng.integers(0, 3, n_lines),
                rng.integers(0, 60, n_lines),
            )
        ]
    )


def test_pivots_add_up_to_the_purchase_totals():
    log = random_log()
    features = basic_features(log, compute_rfm(log))
    with_department = log[log["department"].notna() & ~log["is_return"]]
    by_customer = with_department.groupby("customer_id")["amount"].sum()
    pivot_total = features.set_index("customer_id")[list(department_columns(features).values())].sum(axis=1)
    pd.testing.assert_series_equal(pivot_total[by_customer.index], by_customer, check_names=False)
    assert (features["dept_value:Home"] <= features["monetary"] + 1e-9).all()


def test_categorical_log_gives_identical_features():
    log = random_log()
    categorical = log.copy()
    for column in ("customer_id", "invoice_id", "department", "product_class", "product_id", "country"):
        values = sorted(log[column].dropna().unique(), reverse=True)
        categorical[column] = pd.Categorical(log[column], categories=values + ["never used"])
    pd.testing.assert_frame_equal(all_features(categorical), all_features(log))


def test_deterministic_and_independent_of_row_order():
    log = random_log()
    shuffled = log.sample(frac=1.0, random_state=5).reset_index(drop=True)
    pd.testing.assert_frame_equal(all_features(log), all_features(log))
    pd.testing.assert_frame_equal(all_features(log), all_features(shuffled))


def test_rfm_table_subset_is_respected():
    rfm = compute_rfm(LOG)
    only_b = basic_features(LOG, rfm.iloc[[1]].reset_index(drop=True))
    assert only_b["customer_id"].tolist() == ["B"]
    assert only_b["returns_count"].tolist() == [1] and only_b["dept_value:Home"].tolist() == [12.0]


def test_the_declared_clustering_features_are_the_numeric_columns_of_the_basic_table():
    numeric = basic_features(LOG, compute_rfm(LOG)).select_dtypes("number").columns
    assert all(is_basic_feature(name) for name in numeric)
    assert {name for name in numeric if ":" not in name} == set(BASIC_NUMERIC_FEATURES)
    assert not any(is_basic_feature(name) for name in ("segment", "customer_id", "dept_value:", "class_value:Tools",
                                                       "distinct_products", "recency"))  # fmt: skip

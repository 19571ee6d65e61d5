"""The embedded synthetic data: known ground truth, realistic dirt, determinism and clear config errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segmentation_pipeline.retail import synthetic
from segmentation_pipeline.errors import InputDataError

CUSTOMERS = 2000
TEXT_COLUMNS = ("invoice_id", "customer_id", "product_id", "description", "department", "product_class", "country")
START = pd.Timestamp("2025-01-01")
END = pd.Timestamp("2026-01-01")


@pytest.fixture(scope="module")
def data() -> synthetic.SyntheticData:
    return synthetic.generate(customers=CUSTOMERS, months=12, seed=11)


@pytest.fixture(scope="module")
def truth(data) -> pd.DataFrame:
    """Per customer: persona and the behaviour a segmentation sees, from clean rows only."""
    log = data.transactions
    clean = log[log["customer_id"].notna() & (log["unit_price"] > 0)].drop_duplicates()
    clean = clean.assign(value=clean["quantity"] * clean["unit_price"])
    purchases = clean[clean["quantity"] > 0].groupby("customer_id")
    returned = -clean[clean["quantity"] < 0].groupby("customer_id")["value"].sum()
    table = pd.DataFrame(
        {
            "orders": purchases["invoice_id"].nunique(),
            "spent": purchases["value"].sum(),
            "first": purchases["timestamp"].min(),
            "last": purchases["timestamp"].max(),
        }
    )
    table["order_value"] = table["spent"] / table["orders"]
    table["return_rate"] = returned.reindex(table.index, fill_value=0.0) / table["spent"]
    return table.join(data.customers.set_index("customer_id")[["persona", "signup_date"]])


def test_same_seed_gives_identical_frames_and_another_seed_does_not():
    first = synthetic.generate(customers=300, months=6, seed=3)
    again = synthetic.generate(customers=300, months=6, seed=3)
    other = synthetic.generate(customers=300, months=6, seed=4)
    pd.testing.assert_frame_equal(first.transactions, again.transactions)
    pd.testing.assert_frame_equal(first.customers, again.customers)
    assert not first.transactions.equals(other.transactions)
    assert not first.customers["persona"].equals(other.customers["persona"])


def test_persona_shares_match_weights_at_5000_customers():
    weights = {name: p.weight for name, p in synthetic.load_personas().personas.items()}
    customers = synthetic.generate(customers=5000, months=1, seed=5).customers
    shares = customers["persona"].value_counts(normalize=True)
    assert set(shares.index) == set(weights)
    for name, weight in weights.items():
        assert abs(shares[name] - weight) <= 0.02
        assert abs(shares[name] - weight) <= 1 / 5000 + 1e-12  # exact proportions, not sampling


def test_transactions_have_canonical_columns_and_types(data):
    log = data.transactions
    assert list(log.columns) == list(synthetic.TRANSACTION_COLUMNS)
    assert log["timestamp"].dtype == "datetime64[ns]"
    assert pd.api.types.is_integer_dtype(log["quantity"])
    assert (log["quantity"] != 0).all()
    assert np.allclose(log["unit_price"], log["unit_price"].round(2))
    for column in TEXT_COLUMNS:
        assert pd.api.types.is_string_dtype(log[column]), column
    lines_per_order = log[log["quantity"] > 0].groupby("invoice_id").size()
    assert lines_per_order.mean() > 2 and lines_per_order.max() >= 5


def test_product_columns_follow_the_catalogue(data):
    catalogue = synthetic.product_catalogue()
    assert catalogue["product_id"].is_unique and catalogue["description"].is_unique
    sold = data.transactions.merge(catalogue, on="product_id", suffixes=("", "_catalogue"))
    assert len(sold) == len(data.transactions)
    for column in ("description", "department", "product_class"):
        assert (sold[column] == sold[f"{column}_catalogue"]).all(), column
    paid = sold["unit_price"] > 0
    assert (sold.loc[paid, "unit_price"] == sold.loc[paid, "unit_price_catalogue"]).all()


def test_timestamps_lie_within_the_window(data):
    assert data.transactions["timestamp"].min() >= START
    assert data.transactions["timestamp"].max() < END
    short = synthetic.generate(customers=200, months=3, seed=2, start_month="2024-11").transactions
    assert short["timestamp"].min() >= pd.Timestamp("2024-11-01")
    assert short["timestamp"].max() < pd.Timestamp("2025-02-01")
    assert short["timestamp"].dt.month.nunique() == 3


def test_returns_undo_an_earlier_purchase_of_the_same_customer_and_product(data):
    log = data.transactions.drop_duplicates()
    returns = log[log["quantity"] < 0]
    assert len(returns) > 0.005 * len(log)
    assert returns["invoice_id"].str.startswith("C").all()
    assert (log.loc[log["invoice_id"].str.startswith("C"), "quantity"] < 0).all()

    returns = returns[returns["customer_id"].notna()].reset_index(names="return_row")
    purchases = log[log["quantity"] > 0]
    pairs = returns.merge(
        purchases, on=["customer_id", "product_id", "unit_price"], suffixes=("", "_purchase")
    )
    earlier = pairs[
        (pairs["timestamp_purchase"].dt.normalize() < pairs["timestamp"].dt.normalize())
        & (pairs["quantity_purchase"] >= -pairs["quantity"])
    ]
    assert set(earlier["return_row"]) == set(returns["return_row"])


def test_return_rates_depend_on_the_persona(truth):
    median_rate = truth.groupby("persona")["return_rate"].median()
    assert median_rate.idxmax() == "serial_returner"
    assert median_rate["serial_returner"] > 0.2
    assert median_rate.drop("serial_returner").max() < 0.1


def test_dirty_rows_come_in_realistic_shares(data):
    log = data.transactions
    assert 0.01 <= log["customer_id"].isna().mean() <= 0.03
    assert 0.003 <= (log["unit_price"] == 0).mean() <= 0.01
    assert 0.003 <= log.duplicated().mean() <= 0.01


def test_clean_generation_has_no_dirt():
    log = synthetic.generate(customers=500, months=12, seed=11, dirty=False).transactions
    assert log["customer_id"].notna().all()
    assert (log["unit_price"] > 0).all()
    assert not log.duplicated().any()


def test_customers_table_is_one_profile_per_customer(data):
    customers = data.customers
    assert len(customers) == CUSTOMERS
    assert customers["customer_id"].is_unique and customers["email"].is_unique
    for column in ("persona", "name", "email", "city", "country", "age", "gender", "has_children", "lifestyle"):
        assert customers[column].notna().all(), column
    assert customers["email"].str.fullmatch(r"[a-z0-9.]+@example\.(com|org|net)").all()
    buyers = data.transactions["customer_id"].dropna().unique()
    assert set(buyers) <= set(customers["customer_id"])
    assert len(buyers) > 0.95 * CUSTOMERS
    home = customers.set_index("customer_id")["country"]
    known = data.transactions.dropna(subset=["customer_id"])
    assert (known["country"].to_numpy() == home.loc[known["customer_id"]].to_numpy()).all()


def test_customers_sign_up_before_their_first_purchase(truth):
    assert (truth["signup_date"] <= truth["first"].dt.normalize()).all()


def test_personas_differ_in_rfm_behaviour(truth):
    medians = truth.groupby("persona").median(numeric_only=True)
    last_purchase = truth.groupby("persona")["last"].median()
    first_purchase = truth.groupby("persona")["first"].median()
    assert medians["order_value"]["small_business_buyer"] > 10 * medians["order_value"]["budget_bargain_hunter"]
    assert medians["order_value"]["premium_enthusiast"] > 3 * medians["order_value"]["loyal_family_shopper"]
    assert medians["orders"]["budget_bargain_hunter"] > 2 * medians["orders"]["premium_enthusiast"]
    assert medians["orders"]["one_time_hibernator"] == 1
    assert last_purchase["lapsed_regular"] < last_purchase["loyal_family_shopper"] - pd.Timedelta(days=120)
    assert first_purchase["new_customer_explorer"] > first_purchase.drop("new_customer_explorer").max()


def test_hierarchy_is_large_and_consistent():
    hierarchy = synthetic.load_hierarchy()
    assert len(hierarchy.departments) >= 20
    class_counts = [len(department.classes) for department in hierarchy.departments.values()]
    assert min(class_counts) >= 15 and sum(class_counts) >= 300
    catalogue = synthetic.product_catalogue()
    assert len(catalogue) == sum(class_counts) * hierarchy.products_per_class
    ranges = {name: r for d in hierarchy.departments.values() for name, r in d.classes.items()}
    low = catalogue["product_class"].map(lambda name: ranges[name][0])
    high = catalogue["product_class"].map(lambda name: ranges[name][1])
    assert ((catalogue["unit_price"] >= low) & (catalogue["unit_price"] <= high)).all()


def _write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _default_personas() -> dict:
    return yaml.safe_load(synthetic.DEFAULT_PERSONAS_PATH.read_text(encoding="utf-8"))


def _default_hierarchy() -> dict:
    return yaml.safe_load(synthetic.DEFAULT_HIERARCHY_PATH.read_text(encoding="utf-8"))


def _with_weight(content: dict) -> dict:
    content["personas"]["premium_enthusiast"]["weight"] = 0.2
    return content


def _with_unknown_department(content: dict) -> dict:
    departments = content["personas"]["budget_bargain_hunter"]["departments"]
    departments["Spaceships"] = departments.pop("Pet Supplies")
    return content


def _with_department_weights(content: dict) -> dict:
    content["personas"]["budget_bargain_hunter"]["departments"]["Grocery"] = 0.5
    return content


def _with_unknown_class(content: dict) -> dict:
    content["personas"]["serial_returner"]["favoured_classes"].append("Time Machines")
    return content


def _with_class_of_unused_department(content: dict) -> dict:
    content["personas"]["serial_returner"]["favoured_classes"].append("Lawn Mowers")
    return content


def _with_reversed_range(content: dict) -> dict:
    content["personas"]["loyal_family_shopper"]["spending"]["order_value"] = [110, 45]
    return content


def _with_typo(content: dict) -> dict:
    content["personas"]["loyal_family_shopper"]["spending"]["order_valeu"] = [45, 110]
    return content


def _with_unknown_country(content: dict) -> dict:
    content["personas"]["premium_enthusiast"]["countries"] = {"Atlantis": 1.0}
    return content


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_with_weight, ["personas.*.weight", "sum to 1.13"]),
        (_with_unknown_department, ["personas.budget_bargain_hunter.departments", "unknown department 'Spaceships'"]),
        (_with_department_weights, ["personas.budget_bargain_hunter.departments", "sum to 1.22"]),
        (_with_unknown_class, ["personas.serial_returner.favoured_classes", "unknown product class 'Time Machines'"]),
        (_with_class_of_unused_department, ["'Lawn Mowers'", "never buys from"]),
        (_with_reversed_range, ["personas.loyal_family_shopper.spending.order_value", "lower bound 110"]),
        (_with_typo, ["personas.loyal_family_shopper.spending.order_valeu", "Extra inputs are not permitted"]),
        (_with_unknown_country, ["personas.premium_enthusiast.countries", "no cities for 'Atlantis'"]),
    ],
)
def test_persona_file_problems_name_the_file_and_key(tmp_path, change, expected):
    path = _write_yaml(tmp_path / "personas.yml", change(_default_personas()))
    with pytest.raises(InputDataError) as error:
        synthetic.generate(customers=10, months=1, seed=0, personas_path=path)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_hierarchy_file_problems_name_the_file_and_key(tmp_path):
    content = _default_hierarchy()
    content["departments"]["Grocery"]["classes"]["Dog Food"] = [1.0, 2.0]
    path = _write_yaml(tmp_path / "hierarchy.yml", content)
    expected = f"{path}: departments.Pet Supplies.classes.Dog Food: class name already used in department 'Grocery'"
    with pytest.raises(InputDataError) as error:
        synthetic.load_hierarchy(path)
    assert str(error.value) == expected

    content = _default_hierarchy()
    content["departments"]["Grocery"]["classes"]["Tea"] = [9.0, 1.5]
    path = _write_yaml(tmp_path / "reversed.yml", content)
    with pytest.raises(InputDataError, match=r"reversed\.yml: departments\.Grocery\.classes\.Tea: .*lower bound 9"):
        synthetic.load_hierarchy(path)


def test_repeated_yaml_keys_and_missing_files_are_reported(tmp_path):
    path = tmp_path / "hierarchy.yml"
    path.write_text(
        "products_per_class: 2\nproduct_variants: [Basic, Premium]\n"
        "departments:\n  Grocery:\n    classes:\n      Tea: [1, 2]\n      Tea: [2, 3]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputDataError, match=r"hierarchy\.yml: invalid YAML: .*duplicate key 'Tea'"):
        synthetic.load_hierarchy(path)
    with pytest.raises(InputDataError, match=r"nowhere\.yml: cannot be read"):
        synthetic.load_personas(tmp_path / "nowhere.yml")


def test_a_small_custom_hierarchy_and_persona_file_drive_the_generator(tmp_path):
    hierarchy = _write_yaml(
        tmp_path / "hierarchy.yml",
        {
            "products_per_class": 2,
            "product_variants": ["Plain", "Fancy"],
            "departments": {"Tea Room": {"classes": {"Loose Tea": [2.0, 8.0], "Teapots": [15.0, 40.0]}}},
        },
    )
    personas = _default_personas()
    only = personas["personas"]["loyal_family_shopper"]
    only.update(weight=1.0, departments={"Tea Room": 1.0}, favoured_classes=["Loose Tea"])
    personas["personas"] = {"tea_lover": only}
    path = _write_yaml(tmp_path / "personas.yml", personas)
    data = synthetic.generate(customers=50, months=2, seed=1, personas_path=path, hierarchy_path=hierarchy)
    assert set(data.transactions["department"]) == {"Tea Room"}
    assert set(data.transactions["product_id"]) <= {"P010101", "P010102", "P010201", "P010202"}
    assert (data.customers["persona"] == "tea_lover").all()


def test_categorical_output_holds_the_same_values():
    plain = synthetic.generate(customers=200, months=2, seed=9)
    compact = synthetic.generate(customers=200, months=2, seed=9, categorical=True)
    assert isinstance(compact.transactions["department"].dtype, pd.CategoricalDtype)
    restored = compact.transactions.astype({column: "str" for column in TEXT_COLUMNS})
    pd.testing.assert_frame_equal(restored, plain.transactions)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        synthetic.generate(customers=0, months=12, seed=1)
    with pytest.raises(ValueError, match="2025-01"):
        synthetic.generate(customers=10, months=12, seed=1, start_month="January")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_transactions_round_trips(tmp_path, suffix):
    log = synthetic.generate(customers=100, months=2, seed=6).transactions
    path = synthetic.write_transactions(log, tmp_path / "out" / f"transactions{suffix}")
    if suffix == ".parquet":
        back = pd.read_parquet(path)
    else:
        back = pd.read_csv(path, dtype={"invoice_id": "str", "customer_id": "str"}, parse_dates=["timestamp"])
        back["timestamp"] = back["timestamp"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(back, log)


def test_write_transactions_refuses_other_formats(tmp_path):
    with pytest.raises(InputDataError, match=r"transactions\.xlsx: .*\.csv or \.parquet"):
        synthetic.write_transactions(pd.DataFrame({"a": [1]}), tmp_path / "transactions.xlsx")

"""Customer feature tables built on top of the RFM table.

`basic_features` feeds clustering and profiles; `enriched_features` adds descriptive columns
(country, product breadth, ground truth for synthetic data) and `class_spend` the spend per
product class, used to read clusters, never to fit them. Every per-customer metric is a bincount over integer row -> customer positions,
and category pivots are dense (customers x categories) bincounts, so the cost stays linear
in the number of lines with no per-row Python or string work.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.rfm import (
    distinct_counts,
    factorize_column,
    factorize_required,
    require_columns,
)

DEPT_VALUE_PREFIX = "dept_value:"
DEPT_UNITS_PREFIX = "dept_units:"
GROUND_TRUTH_PREFIX = "true_"
DAYS_PER_MONTH = 365.25 / 12
# What clustering can use: the numeric columns `basic_features` makes (the clustering input), plus its
# per-department columns, whose names depend on the data. The config checks `clustering.features`
# against these before any data is read.
BASIC_NUMERIC_FEATURES = (
    "recency_days", "frequency", "monetary", "monetary_net", "r_score", "f_score", "m_score",
    "avg_order_value", "orders_per_month", "tenure_months", "return_rate", "returns_count", "units",
)  # fmt: skip
BASIC_FEATURE_PREFIXES = (DEPT_VALUE_PREFIX, DEPT_UNITS_PREFIX)


def is_basic_feature(name: str) -> bool:
    """Whether the basic feature table can have a numeric column `name` (for some log)."""
    return name in BASIC_NUMERIC_FEATURES or any(
        name.startswith(prefix) and len(name) > len(prefix) for prefix in BASIC_FEATURE_PREFIXES
    )


def prefixed_columns(df: pd.DataFrame, prefix: str) -> dict[str, str]:
    """Category name -> column name for every column carrying `prefix` (e.g. DEPT_UNITS_PREFIX)."""
    return {column[len(prefix):]: column for column in df.columns if column.startswith(prefix)}


def department_columns(df: pd.DataFrame) -> dict[str, str]:
    """Department name -> its `dept_value:` (gross purchase revenue) column."""
    return prefixed_columns(df, DEPT_VALUE_PREFIX)


def _row_positions(cleaned: pd.DataFrame, customer_ids: pd.Series) -> np.ndarray:
    """Row -> position of its customer in the feature table.

    Rows of customers without a feature row (e.g. returns only) get position len(customer_ids):
    a spare slot every sum is computed into and then dropped, cheaper than filtering each array.
    """
    codes, uniques = factorize_required(cleaned, "customer_id")
    slots = pd.Index(customer_ids).get_indexer(uniques)
    slots[slots < 0] = len(customer_ids)
    return slots[codes]


def _per_customer(positions: np.ndarray, n_customers: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of weights (row count when None) per customer, dropping the spare slot."""
    return np.bincount(positions, weights=weights, minlength=n_customers + 1)[:n_customers]


def _pivots(
    positions: np.ndarray, columns: np.ndarray, n_customers: int, n_columns: int, weights: list
) -> list[np.ndarray]:
    """Dense customers x columns sums, one matrix per weights entry (None = row counts).

    Rows without a customer slot (position n_customers) or a column (-1) are dropped first, so each
    matrix is exactly the output's shape: no spare row or column to slice off and copy.
    """
    kept = np.flatnonzero((positions < n_customers) & (columns >= 0))
    cells = positions[kept] * n_columns + columns[kept]
    size = n_customers * n_columns
    return [
        np.bincount(cells, weights=None if w is None else w[kept], minlength=size).reshape(n_customers, n_columns)
        for w in weights
    ]


def _category_pivot(
    cleaned: pd.DataFrame, column: str, positions: np.ndarray, n_customers: int, measures: dict[str, np.ndarray]
) -> list[pd.DataFrame]:
    """One block of `<prefix><category>` columns per measure: categories present in the log, by name.

    Codes are renumbered to output columns (absent categories to -1) before the pivot, so the
    matrices come out in name order and become the blocks without a copy.
    """
    codes, names = factorize_column(cleaned, column)
    present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(names)))
    by_name = present[names.take(present).argsort()]
    output_column = np.full(len(names) + 1, -1, dtype=np.intp)  # the extra last slot: code -1 stays -1
    output_column[by_name] = np.arange(len(by_name))
    matrices = _pivots(positions, output_column[codes], n_customers, len(by_name), list(measures.values()))
    return [
        pd.DataFrame(matrix, columns=[f"{prefix}{name}" for name in names.take(by_name)], copy=False)
        for prefix, matrix in zip(measures, matrices)
    ]


def _units(cleaned: pd.DataFrame) -> np.ndarray | None:
    """Line quantities with NaN as 0, or None for amount-only logs where units are unknown."""
    if "quantity" not in cleaned.columns:
        return None
    quantity = cleaned["quantity"].to_numpy(dtype=np.float64)
    missing = np.isnan(quantity)
    if missing.all():
        return None
    return np.where(missing, 0.0, quantity) if missing.any() else quantity


def _with_columns(df: pd.DataFrame, columns: dict[str, object], blocks: list[pd.DataFrame]) -> pd.DataFrame:
    """Append columns and column blocks in one concat (one-by-one inserts fragment wide frames)."""
    index = pd.RangeIndex(len(df))
    parts = [df.reset_index(drop=True), pd.DataFrame(columns, index=index), *blocks]
    return pd.concat(parts, axis=1)


def basic_features(cleaned: pd.DataFrame, rfm: pd.DataFrame) -> pd.DataFrame:
    """RFM columns plus order, tenure, return, unit and per-department spend features (see
    `assembled_basic`), from a cleaned log held in memory."""
    require_columns(cleaned, ("customer_id", "amount", "is_return"))
    n_customers = len(rfm)
    is_return = cleaned["is_return"].to_numpy(dtype=bool)
    positions = _row_positions(cleaned, rfm["customer_id"])
    purchase_positions = np.where(is_return, n_customers, positions)
    units = _units(cleaned)
    measures = {DEPT_VALUE_PREFIX: cleaned["amount"].to_numpy(dtype=np.float64)}
    if units is not None:
        measures[DEPT_UNITS_PREFIX] = units
    blocks = []
    if "department" in cleaned.columns:
        blocks = _category_pivot(cleaned, "department", purchase_positions, n_customers, measures)
    return assembled_basic(
        rfm,
        returns_count=_per_customer(positions[is_return], n_customers),
        units=None if units is None else _per_customer(purchase_positions, n_customers, units),
        department_blocks=blocks,
    )


def assembled_basic(
    rfm: pd.DataFrame, returns_count: np.ndarray, units: np.ndarray | None, department_blocks: list[pd.DataFrame]
) -> pd.DataFrame:
    """The basic feature table from the RFM table and per-customer sums of the log (in RFM's order):
    return lines, units bought (None when the log has no quantities) and the `dept_value:` /
    `dept_units:` blocks. Shared by `basic_features` and the out-of-core engine (`aggregates`).

    Tenure is measured from the first purchase to the RFM reference date (recovered as last
    purchase date + recency_days), so features and RFM always share one reference. Return
    rate is returned value / gross purchase value, clipped to [0, 1] because returns of goods
    bought before the log started can exceed what the log shows as bought.
    """
    n_customers = len(rfm)
    monetary = rfm["monetary"].to_numpy(dtype=np.float64)
    returned_value = monetary - rfm["monetary_net"].to_numpy(dtype=np.float64)
    reference = rfm["last_purchase"].dt.normalize() + pd.to_timedelta(rfm["recency_days"], unit="D")
    tenure_months = ((reference - rfm["first_purchase"]) / pd.Timedelta(days=1)).to_numpy() / DAYS_PER_MONTH
    frequency = rfm["frequency"].to_numpy(dtype=np.float64)
    columns: dict[str, object] = {
        "avg_order_value": monetary / frequency,
        "orders_per_month": frequency / np.maximum(tenure_months, 1.0),
        "tenure_months": tenure_months,
        "return_rate": np.clip(
            np.divide(returned_value, monetary, out=np.zeros(n_customers), where=monetary > 0), 0.0, 1.0
        ),
        "returns_count": np.asarray(returns_count).astype(np.int64),
    }
    if units is not None:
        columns["units"] = np.asarray(units, dtype=np.float64)
    return _with_columns(rfm, columns, department_blocks)


def department_blocks(departments: list[str], value: np.ndarray, units: np.ndarray | None) -> list[pd.DataFrame]:
    """The `dept_value:` (and `dept_units:`) column blocks from customers x departments matrices."""
    blocks = [pd.DataFrame(value, columns=[f"{DEPT_VALUE_PREFIX}{name}" for name in departments], copy=False)]
    if units is not None:
        blocks.append(pd.DataFrame(units, columns=[f"{DEPT_UNITS_PREFIX}{name}" for name in departments], copy=False))
    return blocks


def _most_frequent_country(cleaned: pd.DataFrame, positions: np.ndarray, n_customers: int) -> pd.Series:
    """Country on most of the customer's lines; ties go to the alphabetically first country."""
    codes, names = factorize_column(cleaned, "country")
    if len(names) == 0:
        return pd.Series(np.nan, index=range(n_customers), dtype="str")
    (counts,) = _pivots(positions, codes, n_customers, len(names), [None])
    alphabetical = names.argsort()
    winner = counts[:, alphabetical].argmax(axis=1)  # argmax takes the first of equal counts
    country = pd.Series(names.take(alphabetical[winner]), dtype="str")
    return country.where(counts.max(axis=1) > 0)


def _ground_truth(customers: pd.DataFrame, customer_ids: pd.Series) -> pd.DataFrame:
    """Ground-truth customer attributes aligned to `customer_ids`, every column prefixed `true_`."""
    require_columns(customers, ("customer_id",), table="customers (ground truth)")
    truth = customers.set_index(customers["customer_id"].astype(str)).drop(columns="customer_id")
    if not truth.index.is_unique:
        raise InputDataError("customers (ground truth): column 'customer_id' has duplicate values")
    return truth.reindex(customer_ids.astype(str).to_numpy()).add_prefix(GROUND_TRUTH_PREFIX).reset_index(drop=True)


def enriched_features(
    cleaned: pd.DataFrame, basic: pd.DataFrame, customers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Basic features plus descriptive columns (see `assembled_enriched`), from a cleaned log held in memory."""
    require_columns(cleaned, ("customer_id", "amount", "is_return"))
    n_customers = len(basic)
    is_return = cleaned["is_return"].to_numpy(dtype=bool)
    positions = _row_positions(cleaned, basic["customer_id"])
    purchase_positions = np.where(is_return, n_customers, positions)
    country = _most_frequent_country(cleaned, positions, n_customers) if "country" in cleaned.columns else None
    distinct_products = None
    if "product_id" in cleaned.columns:
        product_codes, _ = factorize_column(cleaned, "product_id")
        kept = (purchase_positions < n_customers) & (product_codes >= 0)
        distinct_products = distinct_counts(purchase_positions[kept], product_codes[kept], n_customers)
    return assembled_enriched(basic, country, distinct_products, customers)


def assembled_enriched(
    basic: pd.DataFrame,
    country: pd.Series | None,
    distinct_products: np.ndarray | None,
    customers: pd.DataFrame | None,
) -> pd.DataFrame:
    """Basic features plus descriptive columns: home country, product breadth, ground truth.

    Each addition appears only when its source column (country, product_id) or the ground-truth
    table exists, so real logs without them still work. Spend per product class is the separate
    long table `class_spend`: hundreds of classes as columns would multiply the table's size.
    Shared by `enriched_features` and the out-of-core engine (`aggregates`).
    """
    columns: dict[str, object] = {}
    if country is not None:
        columns["country"] = country
    if distinct_products is not None:
        columns["distinct_products"] = np.asarray(distinct_products).astype(np.int64)
    blocks = [] if customers is None else [_ground_truth(customers, basic["customer_id"])]
    return _with_columns(basic, columns, blocks)


CLASS_SPEND_COLUMNS = ("customer_id", "product_class", "value")


def class_spend(cleaned: pd.DataFrame, customer_ids: pd.Series) -> pd.DataFrame:
    """Gross purchase revenue per customer (of `customer_ids`) and product class, one row per pair the
    customer bought, sorted by customer and class; empty when the log has no product classes."""
    if "product_class" not in cleaned.columns:
        return empty_class_spend()
    purchases = cleaned.loc[~cleaned["is_return"].to_numpy(dtype=bool) & cleaned["product_class"].notna().to_numpy()]
    purchases = purchases[purchases["customer_id"].astype(str).isin(set(pd.Series(customer_ids).astype(str)))]
    spend = (
        purchases.assign(customer_id=purchases["customer_id"].astype(str), product_class=purchases["product_class"].astype(str))
        .groupby(["customer_id", "product_class"], sort=True, observed=True)["amount"]
        .sum()
        .rename("value")
        .reset_index()
    )
    return spend.astype({"customer_id": "str", "product_class": "str", "value": np.float64})


def empty_class_spend() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype="str"), "product_class": pd.Series(dtype="str"),
                         "value": pd.Series(dtype=np.float64)})

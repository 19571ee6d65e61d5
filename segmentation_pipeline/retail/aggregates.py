"""Per-customer aggregates of the cleaned log, computed out of core by DuckDB over the month files.

The cleaned log of a large retailer (10^8 lines) does not fit in memory as a DataFrame, but everything
the customer tables need from it is a group-by: DuckDB scans the month files in parallel, keeps only the
aggregation state in memory and spills to disk beyond `MEMORY_LIMIT`. Only per-customer results (one
row per customer) come back to pandas, where the code shared with the in-memory path (`rfm.scored_rfm`,
`features.assembled_basic`, `features.assembled_enriched`) finishes the tables, so both paths give the
same tables (`compute_rfm`, `basic_features`, `enriched_features`, `class_spend` hold a log in memory).

Money is summed as DECIMAL(38, 12): exact and independent of the order in which the parallel scan
meets the rows, so the same log always gives the same totals, and equal spend gives equal scores. The
in-memory path sums float64 in row order, so totals may differ in the last bits (relative 1e-15).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline import storage
from segmentation_pipeline.retail import features, rfm

MEMORY_LIMIT = "3GB"  # the engine's working memory; larger aggregation states spill to disk
EXACT_MONEY = "DECIMAL(38, 12)"  # 26 digits before the point: sums of 10^8 lines of up to 10^9 each


@contextmanager
def engine(spill_dir: Path | None = None):
    """A DuckDB connection using every core, with bounded memory and spilling into `spill_dir`."""
    connection = duckdb.connect(config={"threads": os.cpu_count() or 1, "memory_limit": MEMORY_LIMIT})
    connection.execute("SET enable_progress_bar = false")
    if spill_dir is not None:
        Path(spill_dir).mkdir(parents=True, exist_ok=True)
        connection.execute("SET temp_directory = ?", [str(spill_dir)])
    try:
        yield connection
    finally:
        connection.close()


class CleanedLog:
    """The cleaned month files of one run, queried through one engine connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, files: Sequence[Path]):
        if not files:
            raise InputDataError(f"{rfm.TABLE_NAME}: no month files to read")
        self.connection = connection
        self.files = [str(path) for path in files]
        self.columns = set(pq.read_schema(self.files[0]).names)
        rfm.require_columns(pd.DataFrame(columns=sorted(self.columns)), rfm.REQUIRED_COLUMNS)
        files = ", ".join(_quoted(path) for path in self.files)
        connection.execute(f"CREATE OR REPLACE TEMP VIEW lines AS SELECT * FROM read_parquet([{files}])")

    def query(self, sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
        for name, frame in frames.items():
            self.connection.register(name, frame)
        try:
            return self.connection.execute(sql).df()
        finally:
            for name in frames:
                self.connection.unregister(name)

    def row(self, sql: str) -> tuple:
        """The single row of a query (read to the end, so the connection is free for the next one)."""
        return self.connection.execute(sql).fetchall()[0]

    def has(self, column: str) -> bool:
        return column in self.columns


def rfm_table(log: CleanedLog) -> pd.DataFrame:
    """`rfm.compute_rfm` of the whole log: one row per customer with a purchase, sorted by id."""
    totals = log.query(
        f"""
        WITH orders AS (
            SELECT customer_id, count(*) AS frequency
            FROM (SELECT DISTINCT customer_id, invoice_id FROM lines WHERE NOT is_return)
            GROUP BY customer_id
        ), sums AS (
            SELECT customer_id,
                   min(timestamp) FILTER (WHERE NOT is_return) AS first_purchase,
                   max(timestamp) FILTER (WHERE NOT is_return) AS last_purchase,
                   sum(amount::{EXACT_MONEY}) FILTER (WHERE NOT is_return) AS monetary,
                   sum(amount::{EXACT_MONEY}) AS monetary_net
            FROM lines GROUP BY customer_id
        )
        SELECT customer_id::VARCHAR AS customer_id, first_purchase, last_purchase, frequency,
               monetary::DOUBLE AS monetary, monetary_net::DOUBLE AS monetary_net
        FROM sums JOIN orders USING (customer_id)
        ORDER BY customer_id
        """
    )
    rows, purchases, latest = log.row("SELECT count(*), count(*) FILTER (WHERE NOT is_return), max(timestamp) FROM lines")
    rfm.require_purchases(purchases, rows)
    reference = pd.Timestamp(latest).normalize() + pd.Timedelta(days=1)
    return rfm.scored_rfm(
        totals["customer_id"],
        totals["first_purchase"].to_numpy(),
        totals["last_purchase"].to_numpy(),
        totals["frequency"].to_numpy(),
        totals["monetary"].to_numpy(),
        totals["monetary_net"].to_numpy(),
        reference,
    )


def basic_features(log: CleanedLog, rfm_frame: pd.DataFrame) -> pd.DataFrame:
    """`features.basic_features` of the whole log for the customers of `rfm_frame`."""
    customers = _positions(rfm_frame)
    n = len(customers)
    has_units = log.has("quantity") and log.row("SELECT count(quantity) > 0 FROM lines")[0]
    units_sum = "sum(coalesce(quantity, 0)) FILTER (WHERE NOT is_return)" if has_units else "NULL"
    per_customer = log.query(
        f"""
        SELECT position, count(*) FILTER (WHERE is_return) AS returns_count, {units_sum} AS units
        FROM lines JOIN customers USING (customer_id) GROUP BY position
        """,
        customers=customers,
    )
    returns_count = _spread(per_customer, "returns_count", n)
    units = _spread(per_customer, "units", n) if has_units else None
    blocks = []
    if log.has("department"):
        departments = _categories(log, "department")
        units_column = ", sum(coalesce(quantity, 0)) AS units" if has_units else ""
        spend = log.query(
            f"""
            SELECT position, category, sum(amount::{EXACT_MONEY})::DOUBLE AS value{units_column}
            FROM lines JOIN customers USING (customer_id) JOIN departments ON lines.department::VARCHAR = departments.name
            WHERE NOT is_return
            GROUP BY ALL
            """,
            customers=customers,
            departments=_numbered(departments),
        )
        column = spend["category"].to_numpy()
        value = _matrix(spend, "value", column, n, len(departments))
        dept_units = _matrix(spend, "units", column, n, len(departments)) if has_units else None
        blocks = features.department_blocks(departments, value, dept_units)
    return features.assembled_basic(rfm_frame, returns_count, units, blocks)


def enriched_features(log: CleanedLog, basic: pd.DataFrame, customers_truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """`features.enriched_features` of the whole log for the customers of `basic`."""
    customers = _positions(basic)
    n = len(customers)
    country = None
    if log.has("country"):
        countries = _categories(log, "country")
        # Most lines first, ties to the alphabetically first country (as `features._most_frequent_country`):
        # the countries are numbered in name order.
        winners = log.query(
            """
            SELECT position, first(category ORDER BY lines DESC, category) AS category
            FROM (SELECT position, category, count(*) AS lines
                  FROM lines JOIN customers USING (customer_id) JOIN countries ON lines.country::VARCHAR = countries.name
                  GROUP BY ALL)
            GROUP BY position
            """,
            customers=customers,
            countries=_numbered(countries),
        )
        country = pd.Series(np.nan, index=range(n), dtype="str")
        country.iloc[winners["position"].to_numpy()] = np.asarray(countries, dtype=object)[winners["category"].to_numpy()]
    distinct_products = None
    if log.has("product_id"):
        products = log.query(
            """
            SELECT position, count(*) AS products
            FROM (SELECT DISTINCT customer_id, product_id FROM lines WHERE NOT is_return AND product_id IS NOT NULL)
            JOIN customers USING (customer_id) GROUP BY position
            """,
            customers=customers,
        )
        distinct_products = _spread(products, "products", n)
    return features.assembled_enriched(basic, country, distinct_products, customers_truth)


def class_spend(log: CleanedLog, customer_ids: pd.Series) -> pd.DataFrame:
    """`features.class_spend` of the whole log: revenue per customer and product class bought."""
    if not log.has("product_class"):
        return features.empty_class_spend()
    spend = log.query(f"SELECT * FROM ({_CLASS_SPEND_SQL})", customers=_ids(customer_ids))
    return spend.astype({"customer_id": "str", "product_class": "str", "value": np.float64})


def write_class_spend(log: CleanedLog, customer_ids: pd.Series, path: Path) -> int:
    """`class_spend` written by the engine straight into a parquet file (its rows never pass through
    pandas: at 10^8 lines they are tens of millions); returns the number of rows."""
    if not log.has("product_class"):
        storage.write_parquet(features.empty_class_spend(), path)
        return 0
    log.connection.register("customers", _ids(customer_ids))
    try:
        with storage.atomic_path(path) as temp:
            log.connection.execute(f"COPY ({_CLASS_SPEND_SQL}) TO {_quoted(temp)} (FORMAT parquet)")
    finally:
        log.connection.unregister("customers")
    return storage.parquet_rows(path)


_CLASS_SPEND_SQL = f"""
    SELECT customer_id::VARCHAR AS customer_id, product_class::VARCHAR AS product_class,
           sum(amount::{EXACT_MONEY})::DOUBLE AS value
    FROM lines SEMI JOIN customers USING (customer_id)
    WHERE NOT is_return AND product_class IS NOT NULL
    GROUP BY ALL ORDER BY customer_id, product_class
"""


def _ids(customer_ids) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(np.asarray(customer_ids), dtype="str")})


def class_spend_by_cluster(class_spend: Path | pd.DataFrame, customer_ids, labels) -> pd.DataFrame:
    """Purchase revenue per cluster (rows, by id) and product class (columns, by name) from the
    `class_spend` table (its parquet file, or the table itself) and one clustering's labels: one
    group-by in the engine, whatever the size of the long table. Negative values count as 0, as in
    every share table of the personas."""
    clusters = pd.DataFrame({"customer_id": pd.Series(np.asarray(customer_ids), dtype="str"),
                             "cluster": np.asarray(labels).astype(np.int64)})
    with engine() as connection:
        connection.register("clusters", clusters)
        if isinstance(class_spend, pd.DataFrame):
            connection.register("class_spend", class_spend)
        else:
            connection.execute(f"CREATE VIEW class_spend AS SELECT * FROM read_parquet({_quoted(class_spend)})")
        totals = connection.execute(
            """
            SELECT cluster, product_class, sum(greatest(value, 0)) AS value
            FROM class_spend JOIN clusters USING (customer_id)
            GROUP BY ALL
            """
        ).df()
    table = totals.pivot_table(index="cluster", columns="product_class", values="value", aggfunc="sum", fill_value=0.0)
    table = table.reindex(index=np.unique(clusters["cluster"]), fill_value=0.0).sort_index(axis=1)
    table.columns = pd.Index(table.columns.astype(str), name=None)
    table.index.name = "cluster"
    return table


def _quoted(path) -> str:
    """A file path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _positions(table: pd.DataFrame) -> pd.DataFrame:
    """customer_id -> row position in `table`, as a frame the engine joins on."""
    return pd.DataFrame({"customer_id": table["customer_id"].astype("str"), "position": np.arange(len(table))})


def _categories(log: CleanedLog, column: str) -> list[str]:
    """Values of `column` present anywhere in the log (returns included), by name."""
    found = log.connection.execute(
        f"SELECT DISTINCT {column}::VARCHAR FROM lines WHERE {column} IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [value for (value,) in found]


def _numbered(names: list[str]) -> pd.DataFrame:
    """`names` with their positions, for the engine to join on: results come back as numbers, not as
    one text per row (tens of millions of customer x department rows at 10^8 lines)."""
    return pd.DataFrame({"name": pd.Series(names, dtype="str"), "category": np.arange(len(names))})


def _spread(frame: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """A per-position result as a dense array of length n (customers without rows get 0)."""
    values = np.zeros(n, dtype=np.float64)
    values[frame["position"].to_numpy()] = frame[column].to_numpy(dtype=np.float64, na_value=0.0)
    return values


def _matrix(frame: pd.DataFrame, column: str, columns: np.ndarray, n: int, width: int) -> np.ndarray:
    matrix = np.zeros((n, width), dtype=np.float64)
    matrix[frame["position"].to_numpy(), columns] = frame[column].to_numpy(dtype=np.float64)
    return matrix

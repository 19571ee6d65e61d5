"""Split the canonical raw table into cleaned rows and rejected rows, each rejection with its reason.

The rules run in the order of REJECT_REASONS and the first rule a row fails names its reason, so each
raw row has exactly one outcome and the counts per reason add up to the rejected rows. Returns
(negative quantity, e.g. Online Retail's "C" invoices) are valid lines: they stay, flagged `is_return`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Rule order: a row is rejected for the first of these it fails.
REJECT_REASONS: dict[str, str] = {
    "unparseable_timestamp": "the timestamp is missing or cannot be read as a date and time",
    "missing_customer": "no customer id, so the line belongs to no customer",
    "unparseable_quantity": "the quantity is missing or not a number",
    "zero_quantity": "the quantity is zero: the line neither sells nor returns anything",
    "unparseable_price": "the unit price is missing or not a number",
    "non_positive_price": "the unit price is zero or negative (free items, fees or accounting adjustments)",
    "missing_amount": "the line amount is missing or not a number (logs with amounts instead of quantity and price)",
    "zero_amount": "the line amount is zero (logs with amounts instead of quantity and price)",
    "duplicate": "an exact copy of an earlier row (all columns equal); the first copy is kept",
}

PRODUCT_COLUMNS = ("product_id", "description", "country", "department", "product_class")
# Raw columns that are not the file's own values, so they take no part in duplicate detection.
DERIVED_COLUMNS = ("source_row", "parse_errors", "source_file")  # added by the pipeline, not the export


@dataclass
class CleaningResult:
    cleaned: pd.DataFrame  # DESIGN's cleaned contract
    rejected: pd.DataFrame  # every raw column plus `reject_reason`
    reason_counts: dict[str, int]  # every code of REJECT_REASONS, in rule order, with its row count


def clean_transactions(raw: pd.DataFrame, drop_exact_duplicates: bool = True) -> CleaningResult:
    """Each raw row goes to `cleaned` or to `rejected` (with the first rule it fails)."""
    itemised = {"quantity", "unit_price"} <= set(raw.columns)
    needed = {"source_row", "customer_id", "timestamp"} | ({"quantity", "unit_price"} if itemised else {"amount"})
    if not needed <= set(raw.columns):
        raise ValueError(f"not a canonical raw table: columns {sorted(needed - set(raw.columns))} are missing")

    reason = _first_failed_rule(raw, itemised, drop_exact_duplicates)
    accepted = reason < 0
    codes = np.array(list(REJECT_REASONS), dtype=object)

    rejected = raw.loc[~accepted].reset_index(drop=True)
    rejected["reject_reason"] = pd.Series(codes[reason[~accepted]], dtype="str")
    counts = np.bincount(reason[~accepted], minlength=len(codes))
    return CleaningResult(
        cleaned=_cleaned_table(raw.loc[accepted].reset_index(drop=True), itemised),
        rejected=rejected,
        reason_counts={code: int(count) for code, count in zip(codes, counts)},
    )


def _first_failed_rule(raw: pd.DataFrame, itemised: bool, drop_exact_duplicates: bool) -> np.ndarray:
    """Index into REJECT_REASONS of the first rule each row fails, -1 where it passes them all."""
    reason = np.full(len(raw), -1, dtype=np.int8)
    rule_index = {code: i for i, code in enumerate(REJECT_REASONS)}

    def reject(code: str, fails: np.ndarray) -> None:
        reason[(reason < 0) & fails] = rule_index[code]

    reject("unparseable_timestamp", raw["timestamp"].isna().to_numpy())
    reject("missing_customer", raw["customer_id"].isna().to_numpy())
    if itemised:
        quantity = raw["quantity"].to_numpy(dtype=np.float64)
        price = raw["unit_price"].to_numpy(dtype=np.float64)
        reject("unparseable_quantity", np.isnan(quantity))
        reject("zero_quantity", quantity == 0)
        reject("unparseable_price", np.isnan(price))
        reject("non_positive_price", price <= 0)
    else:
        amount = raw["amount"].to_numpy(dtype=np.float64)
        reject("missing_amount", np.isnan(amount))
        reject("zero_amount", amount == 0)
    if drop_exact_duplicates:
        # Equal rows fail the same rules, so copies of a rejected row are already rejected for its
        # reason; checking the rows still valid finds every copy of an earlier valid row.
        valid = reason < 0
        duplicate = np.zeros(len(raw), dtype=bool)
        duplicate[valid] = _copies_of_earlier_rows(raw.loc[valid, [c for c in raw.columns if c not in DERIVED_COLUMNS]])
        reject("duplicate", duplicate)
    return reason


def _copies_of_earlier_rows(rows: pd.DataFrame) -> np.ndarray:
    """Rows equal to an earlier row in every column. Row hashes single out the few candidates quickly;
    comparing the candidates' values keeps the answer exact when different rows share a hash.

    Within a categorical column equal codes mean equal values, so its codes stand in for its texts.
    """
    rows = pd.DataFrame({name: _codes_or_values(column) for name, column in rows.items()})
    hashes = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    copies = np.zeros(len(rows), dtype=bool)
    if candidates.any():
        copies[candidates] = rows[candidates].duplicated(keep="first").to_numpy()
    return copies


def _codes_or_values(column: pd.Series) -> pd.Series:
    return column.cat.codes if isinstance(column.dtype, pd.CategoricalDtype) else column


def _cleaned_table(rows: pd.DataFrame, itemised: bool) -> pd.DataFrame:
    """DESIGN's cleaned contract: invoice id and amount always present, returns flagged."""
    missing = pd.Series(np.nan, index=rows.index, dtype=np.float64)
    quantity = rows["quantity"].astype(np.float64) if "quantity" in rows else missing
    unit_price = rows["unit_price"].astype(np.float64) if "unit_price" in rows else missing
    amount = rows["amount"].astype(np.float64) if "amount" in rows else missing
    if itemised:
        amount = amount.fillna(quantity * unit_price)  # a given amount (e.g. after discounts) wins
    canonical = {
        "source_row": rows["source_row"],
        "invoice_id": _invoice_ids(rows),
        "customer_id": _categorical(rows["customer_id"]),
        "timestamp": rows["timestamp"].astype("datetime64[ns]"),
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount,
        "is_return": (quantity < 0) if itemised else (amount < 0),
    }
    products = [c for c in PRODUCT_COLUMNS if c in rows]
    others = [c for c in rows.columns if c not in canonical and c not in products and c not in DERIVED_COLUMNS]
    canonical.update({name: _categorical(rows[name]) for name in products})
    return pd.concat([pd.DataFrame(canonical), rows[others]], axis=1)


def _categorical(values: pd.Series) -> pd.Series:
    """Text columns as `sources.map_columns` makes them: categorical with str categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    return values.astype("str").astype("category")


def _invoice_ids(rows: pd.DataFrame) -> pd.Series:
    """The log's invoice ids, `customer|timestamp` for lines without one, as one categorical column."""
    if "invoice_id" in rows:
        given = _categorical(rows["invoice_id"])
    else:
        none = pd.Categorical.from_codes(np.full(len(rows), -1), categories=pd.Index([], dtype="str"))
        given = pd.Series(none, index=rows.index)
    codes = given.cat.codes.to_numpy()
    missing = codes < 0
    if not missing.any():
        return given
    synthesized = _synthesized_invoice_ids(rows["customer_id"][missing], rows["timestamp"][missing])
    recode, categories = pd.factorize(given.cat.categories.append(synthesized.categories))
    codes = codes.astype(np.int64)
    codes[missing] = len(given.cat.categories) + synthesized.codes
    filled = pd.Categorical.from_codes(recode[codes], categories=pd.Index(categories, dtype="str"))
    return pd.Series(filled, index=rows.index)


def _synthesized_invoice_ids(customer_id: pd.Series, timestamp: pd.Series) -> pd.Categorical:
    """'customer|2011-12-09T12:50:00': a customer's lines at the same moment form one basket.

    Texts are built once per distinct (customer, timestamp) pair: they are the categories, the pairs the codes.
    """
    customer_codes, customers = pd.factorize(customer_id)
    time_codes, times = pd.factorize(timestamp)
    width = max(len(times), 1)
    pair_codes, pairs = pd.factorize(customer_codes.astype(np.int64) * width + time_codes)
    pair_customer, pair_time = np.divmod(pairs, width)
    customer_text = pa.array(np.asarray(customers, dtype=object), type=pa.string()).take(pair_customer)
    seconds = pa.array(np.asarray(times, dtype="datetime64[s]")).cast(pa.string())  # "2011-12-09 12:50:00"
    time_text = pc.replace_substring(seconds, " ", "T").take(pair_time)
    labels = pc.binary_join_element_wise(customer_text, time_text, "|")
    return pd.Categorical.from_codes(pair_codes, categories=pd.Index(pd.array(labels, dtype="str")))

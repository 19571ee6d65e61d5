"""Split the canonical raw table into cleaned rows and rejected rows, each rejection with its reason.

The rules run in the order of REJECT_REASONS and the first rule a row fails names its reason, so each
raw row has exactly one outcome and the counts per reason add up to the rejected rows. Returns
(negative quantity, e.g. Online Retail's "C" invoices) are valid lines: they stay, flagged `is_return`.

Timestamps are checked against a window: not before `CleaningRules.earliest_timestamp` (dates such as
1900-01-01 or 0001-01-01 are placeholders of empty cells, not sales), and not on a day after the run's
date `as_of` (a clock or typing error; it would also open months that have not happened). The same
window decides which rows have a month (`transaction_months`), so a row that cleaning rejects for its
timestamp creates no month.

When a log maps `amount` as well as `quantity` and `unit_price`, the given amount is the line's revenue
(it is what was charged: discounts, rounding, fees), and quantity x unit_price only fills amounts that
are missing. Lines where the two disagree beyond a tolerance are counted (`AmountAgreement`), not
rejected: a discount is not an error, but many disagreements suggest a wrongly mapped column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmentation_pipeline.cells import month_of

# Rule order: a row is rejected for the first of these it fails.
REJECT_REASONS: dict[str, str] = {
    "unparseable_timestamp": "the timestamp is missing or cannot be read as a date and time",
    "implausible_timestamp": "the timestamp is before the earliest plausible date (a placeholder such as 1900-01-01)",
    "future_timestamp": "the timestamp is on a day after the run's date",
    "missing_customer": "no customer id, or a placeholder such as 'unknown', so the line belongs to no customer",
    "unparseable_quantity": "the quantity is missing or not a number",
    "zero_quantity": "the quantity is zero: the line neither sells nor returns anything",
    "unparseable_price": "the unit price is missing or not a number",
    "non_positive_price": "the unit price is zero or negative (free items, fees or accounting adjustments)",
    "missing_amount": "the line amount is missing or not a number (logs with amounts instead of quantity and price)",
    "zero_amount": "the line amount is zero (logs with amounts instead of quantity and price)",
    "implausible_value": "a value is infinite, or the line amount is beyond the configured maximum",
    "duplicate": "an exact copy of an earlier row (all columns equal); the first copy is kept",
}
TIMESTAMP_REASONS = ("unparseable_timestamp", "implausible_timestamp", "future_timestamp")
# The columns whose values show why a row was rejected (the examples of `rejected_reasons_summary`).
REASON_COLUMNS: dict[str, tuple[str, ...]] = {
    **{reason: ("timestamp",) for reason in TIMESTAMP_REASONS},
    "missing_customer": ("customer_id",),
    "unparseable_quantity": ("quantity",),
    "zero_quantity": ("quantity",),
    "unparseable_price": ("unit_price",),
    "non_positive_price": ("unit_price",),
    "missing_amount": ("amount",),
    "zero_amount": ("amount",),
    "implausible_value": ("quantity", "unit_price", "amount"),
    "duplicate": ("invoice_id", "customer_id", "timestamp"),
}

PRODUCT_COLUMNS = ("product_id", "description", "country", "department", "product_class")
# Raw columns that are not the file's own values, so they take no part in duplicate detection.
DERIVED_COLUMNS = ("source_row", "parse_errors", "source_file")  # added by the pipeline, not the export

# Customer ids that exports write for "no customer" (compared case-insensitively, blanks stripped);
# empty and blank cells are already missing.
PLACEHOLDER_CUSTOMER_IDS = ("unknown", "-", "n/a", "na", "null", "none", "nan", "0")
EARLIEST_TIMESTAMP = pd.Timestamp("1990-01-01")
MAX_LINE_AMOUNT = 1e9  # per line, in the log's currency: far above any real order line, far below overflow
AMOUNT_MISMATCH_TOLERANCE = 0.01  # relative difference between amount and quantity x unit_price
AMOUNT_ROUNDING = 0.005  # half a cent: amounts rounded to cents always agree
EXAMPLES_PER_CHECK = 3


@dataclass(frozen=True)
class CleaningRules:
    """The configurable parts of cleaning (see `TransactionsSettings` for the config keys)."""

    drop_exact_duplicates: bool = True
    earliest_timestamp: pd.Timestamp = EARLIEST_TIMESTAMP
    placeholder_customer_ids: tuple[str, ...] = PLACEHOLDER_CUSTOMER_IDS
    max_line_amount: float = MAX_LINE_AMOUNT
    amount_mismatch_tolerance: float = AMOUNT_MISMATCH_TOLERANCE

    def window(self, as_of: pd.Timestamp | str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[earliest, end): plausible timestamps; end is midnight after the run's date `as_of`.

        A whole day of slack at the end keeps the run's own day valid in every time zone the log
        may be written in.
        """
        run_date = pd.Timestamp(as_of)
        if run_date.tz is not None:  # the log's timestamps are naive (UTC where the log had zones)
            run_date = run_date.tz_convert("UTC").tz_localize(None)
        return pd.Timestamp(self.earliest_timestamp), run_date.normalize() + pd.Timedelta(days=1)


@dataclass(frozen=True)
class AmountAgreement:
    """Lines with both a given amount and quantity x unit_price, and those where they disagree."""

    compared_rows: int = 0
    disagreeing_rows: int = 0
    tolerance: float = AMOUNT_MISMATCH_TOLERANCE
    examples: tuple[str, ...] = ()

    @property
    def disagreeing_share(self) -> float:
        return self.disagreeing_rows / self.compared_rows if self.compared_rows else 0.0


@dataclass
class CleaningResult:
    cleaned: pd.DataFrame  # DESIGN's cleaned contract
    rejected: pd.DataFrame  # every raw column plus `reject_reason`
    reason_counts: dict[str, int]  # every code of REJECT_REASONS, in rule order, with its row count
    amount_agreement: AmountAgreement = field(default_factory=AmountAgreement)


def clean_transactions(
    raw: pd.DataFrame, *, as_of: pd.Timestamp | str, rules: CleaningRules = CleaningRules()
) -> CleaningResult:
    """Each raw row goes to `cleaned` or to `rejected` (with the first rule it fails).

    `as_of` is the run's date: rows dated on a later day are rejected as `future_timestamp`. Pass the
    same `as_of` to `transaction_months`, so that the rows without a month are exactly the rows
    rejected for their timestamp.
    """
    itemised = {"quantity", "unit_price"} <= set(raw.columns)
    needed = {"source_row", "customer_id", "timestamp"} | ({"quantity", "unit_price"} if itemised else {"amount"})
    if not needed <= set(raw.columns):
        raise ValueError(f"not a canonical raw table: columns {sorted(needed - set(raw.columns))} are missing")

    reason = _first_failed_rule(raw, itemised, rules, as_of)
    accepted = reason < 0
    codes = np.array(list(REJECT_REASONS), dtype=object)

    rejected = raw.loc[~accepted].reset_index(drop=True)
    rejected["reject_reason"] = pd.Series(codes[reason[~accepted]], dtype="str")
    counts = np.bincount(reason[~accepted], minlength=len(codes))
    kept = raw.loc[accepted].reset_index(drop=True)
    return CleaningResult(
        cleaned=_cleaned_table(kept, itemised),
        rejected=rejected,
        reason_counts={code: int(count) for code, count in zip(codes, counts)},
        amount_agreement=_amount_agreement(kept, rules.amount_mismatch_tolerance) if itemised else AmountAgreement(),
    )


@dataclass(frozen=True)
class RejectedReason:
    """One reject reason of a run: its rows, their share of all raw rows, and example values."""

    reason: str
    rows: int
    share: float
    examples: tuple[str, ...]

    def describe(self) -> str:
        """'unparseable_timestamp: 412 rows (4.1%), e.g. timestamp='31/02/2025'; timestamp='soon'"."""
        examples = f", e.g. {'; '.join(self.examples)}" if self.examples else ""
        return f"{self.reason}: {self.rows:,} rows ({self.share:.1%}){examples}"


def rejected_reasons_summary(
    rejected: pd.DataFrame, raw_rows: int, examples: int = EXAMPLES_PER_CHECK
) -> list[RejectedReason]:
    """The reasons present in `rejected`, most rows first (then in rule order), each with its share of
    the `raw_rows` and up to `examples` distinct examples of the values that failed (the file's own text
    where the cell could not be parsed). Feeds the rejected-share checks and the asset metadata."""
    if rejected.empty:
        return []
    counts = rejected["reject_reason"].value_counts()
    order = sorted(counts.index, key=lambda reason: (-counts[reason], list(REJECT_REASONS).index(reason)))
    summary = []
    for reason in order:
        rows = rejected.loc[rejected["reject_reason"] == reason].head(50 * examples)
        described = pd.unique(pd.Series([_described_row(row, REASON_COLUMNS[reason]) for _, row in rows.iterrows()]))
        share = int(counts[reason]) / raw_rows if raw_rows else 0.0
        summary.append(RejectedReason(reason, int(counts[reason]), share, tuple(described[:examples])))
    return summary


def merged_reasons_summary(
    parts: list[list[RejectedReason]], raw_rows: int, examples: int = EXAMPLES_PER_CHECK
) -> list[RejectedReason]:
    """`rejected_reasons_summary` of a table from the summaries of its consecutive parts (months):
    rows add up, shares are of all `raw_rows`, examples are the first distinct ones in part order."""
    rows: dict[str, int] = {}
    found: dict[str, list[str]] = {}
    for part in parts:
        for reason in part:
            rows[reason.reason] = rows.get(reason.reason, 0) + reason.rows
            found.setdefault(reason.reason, []).extend(reason.examples)
    order = sorted(rows, key=lambda reason: (-rows[reason], list(REJECT_REASONS).index(reason)))
    return [
        RejectedReason(
            reason,
            rows[reason],
            rows[reason] / raw_rows if raw_rows else 0.0,
            tuple(dict.fromkeys(found[reason]))[:examples],
        )
        for reason in order
    ]


def merged_amount_agreement(parts: list[AmountAgreement]) -> AmountAgreement:
    """The amount agreement of a table from those of its consecutive parts (months)."""
    if not parts:
        return AmountAgreement()
    return AmountAgreement(
        sum(part.compared_rows for part in parts),
        sum(part.disagreeing_rows for part in parts),
        parts[0].tolerance,
        tuple(example for part in parts for example in part.examples)[:EXAMPLES_PER_CHECK],
    )


def _described_row(row: pd.Series, columns: tuple[str, ...]) -> str:
    """"quantity=1; unit_price=1e+300"; a cell that did not parse shows the file's text from `parse_errors`."""
    parts = []
    for column in columns:
        if column not in row.index:
            continue
        value = row[column]
        if pd.isna(value):
            text = _unparsed_text(row.get("parse_errors"), column)
            parts.append(f"{column}='{text}'" if text is not None else f"{column} empty")
        elif isinstance(value, float):
            parts.append(f"{column}={value:g}")
        elif isinstance(value, pd.Timestamp):
            parts.append(f"{column}={value.isoformat(sep=' ')}")
        else:
            parts.append(f"{column}='{value}'")
    return "; ".join(parts)


def _unparsed_text(parse_errors: object, column: str) -> str | None:
    """The text of `column` in a row's parse errors ("timestamp='2011-13-45'; quantity='abc'")."""
    if not isinstance(parse_errors, str):
        return None
    for part in parse_errors.split("; "):
        if part.startswith(f"{column}='"):
            return part[len(column) + 2 : -1]
    return None


def plausible_timestamps(timestamps: pd.Series, as_of: pd.Timestamp | str, rules: CleaningRules) -> np.ndarray:
    """Rows whose timestamp is present and inside the window (see `CleaningRules.window`)."""
    start, end = rules.window(as_of)
    stamps = pd.Series(timestamps)
    return (stamps.notna() & (stamps >= start) & (stamps < end)).to_numpy()


def transaction_months(timestamps: pd.Series, as_of: pd.Timestamp | str, rules: CleaningRules) -> pd.Series:
    """'YYYY-MM' of each row with a plausible timestamp; missing for the rows that cleaning rejects for
    their timestamp (unparseable, implausible, future), so that such rows never create a month."""
    stamps = pd.Series(timestamps)
    return month_of(stamps.where(plausible_timestamps(stamps, as_of, rules)))


def _first_failed_rule(raw: pd.DataFrame, itemised: bool, rules: CleaningRules, as_of) -> np.ndarray:
    """Index into REJECT_REASONS of the first rule each row fails, -1 where it passes them all."""
    reason = np.full(len(raw), -1, dtype=np.int8)
    rule_index = {code: i for i, code in enumerate(REJECT_REASONS)}

    def reject(code: str, fails: np.ndarray) -> None:
        reason[(reason < 0) & fails] = rule_index[code]

    timestamps = raw["timestamp"]
    start, end = rules.window(as_of)
    reject("unparseable_timestamp", timestamps.isna().to_numpy())
    reject("implausible_timestamp", (timestamps < start).to_numpy())
    reject("future_timestamp", (timestamps >= end).to_numpy())
    reject("missing_customer", _missing_customers(raw["customer_id"], rules.placeholder_customer_ids))
    amount = raw["amount"].to_numpy(dtype=np.float64) if "amount" in raw else None
    if itemised:
        quantity = raw["quantity"].to_numpy(dtype=np.float64)
        price = raw["unit_price"].to_numpy(dtype=np.float64)
        reject("unparseable_quantity", np.isnan(quantity))
        reject("zero_quantity", quantity == 0)
        reject("unparseable_price", np.isnan(price))
        reject("non_positive_price", price <= 0)
        with np.errstate(over="ignore", invalid="ignore"):
            line_amounts = [quantity * price] + ([amount] if amount is not None else [])
    else:
        reject("missing_amount", np.isnan(amount))
        reject("zero_amount", amount == 0)
        line_amounts = [amount]
    reject("implausible_value", _beyond(line_amounts, rules.max_line_amount))
    if rules.drop_exact_duplicates:
        # Equal rows fail the same rules, so copies of a rejected row are already rejected for its
        # reason; checking the rows still valid finds every copy of an earlier valid row.
        compared = raw[[c for c in raw.columns if c not in DERIVED_COLUMNS]]
        reject("duplicate", _copies_of_earlier_rows(compared, among=reason < 0))
    return reason


def _missing_customers(customer_ids: pd.Series, placeholders: tuple[str, ...]) -> np.ndarray:
    """Missing ids and placeholder ids (case-insensitive, blanks stripped); each distinct id is compared once."""
    codes, distinct = pd.factorize(customer_ids)
    wanted = {placeholder.strip().lower() for placeholder in placeholders}
    placeholder = pd.Index(distinct).astype("str").str.strip().str.lower().isin(wanted)
    return np.append(placeholder, True)[codes]  # code -1 (a missing id) picks the appended True


def _beyond(line_amounts: list[np.ndarray], max_line_amount: float) -> np.ndarray:
    """Lines with an amount beyond the cap or infinite. An infinite quantity or price makes the product
    infinite, and 1e300 x 1e300 overflows to infinity, so the line amounts cover every value."""
    fails = np.zeros(len(line_amounts[0]), dtype=bool)
    with np.errstate(invalid="ignore"):
        for amounts in line_amounts:
            fails |= np.abs(amounts) > max_line_amount  # NaN (a missing amount, filled later) is not judged
    return fails


def _amount_agreement(rows: pd.DataFrame, tolerance: float) -> AmountAgreement:
    """Compare the given amounts with quantity x unit_price on the cleaned rows that have both."""
    if "amount" not in rows:
        return AmountAgreement()
    amount = rows["amount"].to_numpy(dtype=np.float64)
    computed = rows["quantity"].to_numpy(dtype=np.float64) * rows["unit_price"].to_numpy(dtype=np.float64)
    compared = ~np.isnan(amount)
    disagree = compared & (np.abs(amount - computed) > np.maximum(tolerance * np.abs(computed), AMOUNT_ROUNDING))
    examples = tuple(
        f"source row {row}: amount {a:g} vs quantity x unit_price {q:g} x {p:g} = {q * p:g}"
        for row, a, q, p in rows.loc[disagree, ["source_row", "amount", "quantity", "unit_price"]]
        .head(EXAMPLES_PER_CHECK)
        .itertuples(index=False)
    )
    return AmountAgreement(int(compared.sum()), int(disagree.sum()), tolerance, examples)


def _copies_of_earlier_rows(rows: pd.DataFrame, among: np.ndarray) -> np.ndarray:
    """Rows of `among` equal in every column to an earlier row of `among`.

    Hashes of the columns that hash fast (numbers, timestamps, categorical codes: within a column
    equal codes mean equal values) single out the few candidates; comparing the candidates in every
    column keeps the answer exact. Text columns (identifiers, nearly one value per row) are left out
    of the hash: hashing ten million of them cost more than every rule together, and rows that differ
    only in them are few, and compared in full.
    """
    hashed = {name: _codes_or_values(column) for name, column in rows.items() if _hashes_fast(column)}
    hashes = pd.util.hash_pandas_object(pd.DataFrame(hashed), index=False).to_numpy() if hashed else np.zeros(len(rows))
    candidates = among.copy()
    candidates[among] = pd.Series(hashes[among]).duplicated(keep=False).to_numpy()
    copies = np.zeros(len(rows), dtype=bool)
    if candidates.any():
        copies[candidates] = rows[candidates].duplicated(keep="first").to_numpy()
    return copies


def _hashes_fast(column: pd.Series) -> bool:
    dtype = column.dtype
    return isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)


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
        "customer_id": _identifiers(rows["customer_id"]),
        "timestamp": rows["timestamp"].astype("datetime64[ns]"),
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount,
        "is_return": (quantity < 0) if itemised else (amount < 0),
    }
    products = [c for c in PRODUCT_COLUMNS if c in rows]
    # Parse errors are empty on cleaned rows; `source_file` (inbox data) stays, so a row can be traced to its file.
    others = [c for c in rows.columns if c not in canonical and c not in products and c != "parse_errors"]
    canonical.update({name: _categorical(rows[name]) for name in products})
    return pd.concat([pd.DataFrame(canonical), rows[others]], axis=1)


def _categorical(values: pd.Series) -> pd.Series:
    """Text columns as `sources.map_columns` makes them: categorical with str categories."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values
    return values.astype("str").astype("category")


def _identifiers(values: pd.Series) -> pd.Series:
    """Id columns as they come when they are plain text (month files store ids that way: see
    `transactions.IDENTIFIER_COLUMNS`; making millions of them categorical only to write them back
    as text took a fifth of the cleaning), else categorical like every text column."""
    return values if _plain_text(values) else _categorical(values)


def _plain_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype)


def _invoice_ids(rows: pd.DataFrame) -> pd.Series:
    """The log's invoice ids, `customer|timestamp` for lines without one: plain text when the log's ids
    are (`_identifiers`), else one categorical column."""
    if "invoice_id" in rows and _plain_text(rows["invoice_id"]):
        given = rows["invoice_id"]
        missing = given.isna().to_numpy()
        if not missing.any():
            return given
        synthesized = _synthesized_invoice_ids(rows["customer_id"][missing], rows["timestamp"][missing])
        filled = given.to_numpy(dtype=object, na_value=None)
        filled[missing] = np.asarray(synthesized, dtype=object)
        return pd.Series(filled, index=rows.index, dtype=given.dtype)
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

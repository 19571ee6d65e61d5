"""RFM metrics, quintile scores and named segments, one row per purchasing customer.

RFM is both a feature source for clustering and the baseline every clustering method is
compared with, so it has to stay cheap on tens of millions of lines: rows are reduced to
integer customer codes once and every metric is a numpy reduction over those codes.

Scores are a function of the values only: the same log in any row order, with any customer ids,
gives every customer the same scores and segment. Each score (1..5, higher value = higher score;
recency is scored on -recency_days) comes from value quantiles: customers with equal values form one
block in the value order, and the block takes the quintile that holds its middle. In formula, with
`below` customers of lower value and `equal` of the same value among n, the score is
1 + floor(5 * (below + equal / 2) / n). So distinct values fill the five bins equally, equal values
always get equal scores, and a bin stays empty when a tie block spans it: where half the customers
bought once, every one-time buyer scores 2 and nobody scores 1; with one identical timestamp for all
rows, every customer has recency score 3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation_pipeline.errors import InputDataError

TABLE_NAME = "cleaned transactions"
REQUIRED_COLUMNS = ("customer_id", "invoice_id", "timestamp", "amount", "is_return")
RFM_COLUMNS = [
    "customer_id",
    "first_purchase",
    "last_purchase",
    "recency_days",
    "frequency",
    "monetary",
    "monetary_net",
    "r_score",
    "f_score",
    "m_score",
    "rfm_score",
    "segment",
]

SEGMENT_DESCRIPTIONS: dict[str, str] = {
    "champions": "Bought very recently and buy often: the best customers, reward and ask for referrals.",
    "loyal_customers": "Buy often and fairly recently: the dependable core, keep them engaged.",
    "potential_loyalists": "Recent buyers with a few orders: can become loyal with the right offer.",
    "new_customers": "Bought very recently but only once or twice: onboard them well.",
    "promising": "Fairly recent, very few orders: worth a nudge to build the habit.",
    "need_attention": "Average recency and frequency: slipping unless re-engaged soon.",
    "about_to_sleep": "Below-average recency and few orders: will be lost without reactivation.",
    "at_risk": "Bought often in the past but not for a long time: win them back.",
    "cant_lose": "Were among the most frequent buyers but have gone quiet: top win-back priority.",
    "hibernating": "Last bought long ago and rarely: lowest priority, cheap reactivation only.",
}

# Classic R x F map: row = recency score 1..5, column = frequency score 1..5.
SEGMENT_GRID = np.array(
    [
        ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
        ["hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"],
        ["about_to_sleep", "about_to_sleep", "need_attention", "loyal_customers", "loyal_customers"],
        ["promising", "potential_loyalists", "potential_loyalists", "loyal_customers", "loyal_customers"],
        ["new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"],
    ],
    dtype=object,
)
_SEGMENT_NAMES = pd.Index(list(SEGMENT_DESCRIPTIONS), dtype="str")
_SEGMENT_CODES = _SEGMENT_NAMES.get_indexer(SEGMENT_GRID.ravel()).reshape(SEGMENT_GRID.shape)


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], table: str = TABLE_NAME) -> None:
    """Fail early with the missing column names instead of a KeyError deep in a reduction."""
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise InputDataError(f"{table}: missing required column(s) {missing}")


def factorize_column(df: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 = missing) and the values they stand for, in no particular order.

    Categorical columns (the cleaned table's text columns) reuse their codes as they are, small
    read-only integers with uniques = all categories, used or not, instead of hashing every row
    again or copying the codes. Callers order results per customer or per category afterwards,
    far cheaper than re-coding rows in sorted order.
    """
    values = df[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.array.codes, values.cat.categories  # a view: `.cat.codes` would copy them
    return pd.factorize(values)


def factorize_required(df: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Index]:
    """Like `factorize_column` for a column that must never be missing (a -1 code would corrupt bincounts)."""
    codes, uniques = factorize_column(df, column)
    if len(codes) and codes.min() < 0:
        raise InputDataError(f"{TABLE_NAME}: column '{column}' has {int((codes < 0).sum())} missing value(s)")
    return codes, uniques


def distinct_counts(group_codes: np.ndarray, item_codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct items per group.

    Sorts combined int64 (group, item) keys and counts the first of each run: with millions of
    mostly distinct pairs a sort is several times faster than hashing them.
    """
    if len(item_codes) == 0:
        return np.zeros(n_groups, dtype=np.int64)
    n_items = int(item_codes.max()) + 1
    keys = np.sort(group_codes.astype(np.int64) * n_items + item_codes)
    starts_run = np.empty(len(keys), dtype=bool)
    starts_run[0] = True
    np.not_equal(keys[1:], keys[:-1], out=starts_run[1:])
    return np.bincount(keys[starts_run] // n_items, minlength=n_groups)


def _orders_per_customer(customer_codes: np.ndarray, invoice_codes: np.ndarray, n_customers: int) -> np.ndarray:
    """Distinct invoices per customer.

    An invoice normally belongs to a single customer; then one scatter/gather over invoice
    codes replaces hashing (customer, invoice) pairs. Invoice ids shared between customers
    fall back to the pair count.
    """
    owner = np.full(int(invoice_codes.max()) + 1, -1, dtype=np.intp)
    owner[invoice_codes] = customer_codes
    if np.array_equal(owner[invoice_codes], customer_codes):
        return np.bincount(owner[owner >= 0], minlength=n_customers)
    return distinct_counts(customer_codes, invoice_codes, n_customers)


def reference_date_for(cleaned: pd.DataFrame) -> pd.Timestamp:
    """Midnight after the last transaction, so the latest buyers get recency 1 and nobody gets 0."""
    return pd.Timestamp(cleaned["timestamp"].to_numpy().max()).normalize() + pd.Timedelta(days=1)


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 1..5 from value quantiles, equal values scoring equally (the rule is in the module docstring)."""
    values = np.asarray(values)
    _, block, sizes = np.unique(values, return_inverse=True, return_counts=True)
    below = np.cumsum(sizes) - sizes
    # 1 + floor(5 * (below + equal / 2) / n), in integers: exact at the bin edges.
    scores = 1 + (5 * (2 * below + sizes)) // (2 * max(len(values), 1))
    return scores[block].astype(np.int64)


def segment_for(r_scores: np.ndarray, f_scores: np.ndarray) -> pd.Index:
    """Segment names for score arrays via the 5x5 grid lookup (taken from a str Index: no per-row strings)."""
    return _SEGMENT_NAMES.take(_SEGMENT_CODES[np.asarray(r_scores) - 1, np.asarray(f_scores) - 1])


def compute_rfm(cleaned: pd.DataFrame, reference_date: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer with at least one purchase line, sorted by customer_id.

    Returns do not count as orders and customers who only returned goods get no row, but
    returns reduce monetary_net. Recency counts calendar days between the last purchase
    date and the reference date (default: the day after the last transaction).
    """
    require_columns(cleaned, REQUIRED_COLUMNS)
    is_return = cleaned["is_return"].to_numpy(dtype=bool)
    require_purchases(int((~is_return).sum()), len(is_return))
    reference = reference_date_for(cleaned) if reference_date is None else pd.Timestamp(reference_date)

    codes, customer_ids = factorize_required(cleaned, "customer_id")
    invoice_codes, _ = factorize_required(cleaned, "invoice_id")
    n_all = len(customer_ids)
    # A customer's purchase lines go to slot `code`, its returns to slot `code + n_all`: each reduction
    # below is one pass over all rows instead of first filtering every column to the purchase lines.
    slots = codes.astype(np.intp)
    slots[is_return] += n_all
    timestamps = cleaned["timestamp"].to_numpy()

    first = np.full(2 * n_all, np.iinfo(np.int64).max)
    np.minimum.at(first, slots, timestamps.view(np.int64))
    last = np.full(2 * n_all, np.iinfo(np.int64).min)
    np.maximum.at(last, slots, timestamps.view(np.int64))
    frequency = _orders_per_customer(slots, invoice_codes, 2 * n_all)[:n_all]
    value = np.bincount(slots, weights=cleaned["amount"].to_numpy(dtype=np.float64), minlength=2 * n_all)
    monetary = value[:n_all]
    monetary_net = monetary + value[n_all:]

    buyers = np.flatnonzero(frequency > 0)
    if not customer_ids.is_monotonic_increasing:  # sorted categories: code order is already id order
        buyers = buyers[customer_ids.take(buyers).argsort()]
    return scored_rfm(
        customer_ids.take(buyers),
        first[buyers].view(timestamps.dtype),
        last[buyers].view(timestamps.dtype),
        frequency[buyers],
        monetary[buyers],
        monetary_net[buyers],
        reference,
    )


def scored_rfm(
    customer_id,
    first_purchase: np.ndarray,
    last_purchase: np.ndarray,
    frequency: np.ndarray,
    monetary: np.ndarray,
    monetary_net: np.ndarray,
    reference_date: pd.Timestamp,
) -> pd.DataFrame:
    """The RFM table from per-customer totals (customers sorted by id, each with a purchase): recency,
    scores and segment. Shared by `compute_rfm` and the out-of-core engine (`aggregates`), so both
    score and name segments by the same code."""
    first_purchase = np.asarray(first_purchase, dtype="datetime64[ns]")
    last_purchase = np.asarray(last_purchase, dtype="datetime64[ns]")
    reference_day = np.datetime64(pd.Timestamp(reference_date).normalize().to_datetime64(), "D")
    recency_days = (reference_day - last_purchase.astype("datetime64[D]")).astype(np.int64)
    frequency = np.asarray(frequency).astype(np.int64)
    monetary = np.asarray(monetary, dtype=np.float64)
    r_score = quintile_scores(-recency_days)
    f_score = quintile_scores(frequency)
    m_score = quintile_scores(monetary)
    return pd.DataFrame(
        {
            "customer_id": pd.Series(np.asarray(customer_id, dtype=object), dtype="str"),
            "first_purchase": first_purchase,
            "last_purchase": last_purchase,
            "recency_days": recency_days,
            "frequency": frequency,
            "monetary": monetary,
            "monetary_net": np.asarray(monetary_net, dtype=np.float64),
            "r_score": r_score,
            "f_score": f_score,
            "m_score": m_score,
            "rfm_score": pd.Series(r_score * 100 + f_score * 10 + m_score).astype("str"),
            "segment": segment_for(r_score, f_score),
        },
        columns=RFM_COLUMNS,
    )


def require_purchases(purchase_lines: int, rows: int) -> None:
    if purchase_lines == 0:
        raise InputDataError(
            f"{TABLE_NAME}: no purchase lines (column 'is_return' is true on all {rows} rows); "
            "RFM needs at least one purchase"
        )

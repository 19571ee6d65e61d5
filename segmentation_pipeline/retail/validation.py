"""Invariants of the pipeline's tables, as lists of human-readable problems (empty = healthy).

The Dagster asset checks call these; keeping them here makes them testable without Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from segmentation_pipeline.cells import MAX_UNPARSEABLE_SHARE
from segmentation_pipeline.retail.cleaning import AmountAgreement, RejectedReason

REQUIRED_RAW_COLUMNS = ("customer_id", "timestamp")
REVENUE_ALTERNATIVES = (("amount",), ("quantity", "unit_price"))
MAX_REJECTED_SHARE = 0.05  # defaults of the transactions config keys of the same names
REJECTED_REASON_WARNING_SHARE = 0.005
TOP_REASONS = 3


def raw_table_problems(columns: Sequence[str], rows: int, missing_timestamps: int) -> list[str]:
    """Required canonical columns exist and most timestamps parsed (`missing_timestamps` of `rows`),
    judged on the whole raw table, whose months are stored apart."""
    problems = [f"required column `{c}` is missing" for c in REQUIRED_RAW_COLUMNS if c not in columns]
    if not any(all(c in columns for c in option) for option in REVENUE_ALTERNATIVES):
        problems.append("neither `amount` nor both `quantity` and `unit_price` are present")
    if rows and "timestamp" in columns:
        share = missing_timestamps / rows
        if share > MAX_UNPARSEABLE_SHARE:
            problems.append(f"{share:.0%} of timestamps could not be parsed")
    return problems


def accounting_problems(
    raw_counts: Mapping[str, int], cleaned_counts: Mapping[str, int], rejected_counts: Mapping[str, int]
) -> list[str]:
    """Per month, raw rows must equal cleaned + rejected rows: nothing dropped, nothing invented."""
    problems = []
    for month in sorted(set(raw_counts) | set(cleaned_counts) | set(rejected_counts)):
        raw, cleaned, rejected = (counts.get(month, 0) for counts in (raw_counts, cleaned_counts, rejected_counts))
        if raw != cleaned + rejected:
            problems.append(f"{month}: {raw} raw rows but {cleaned} cleaned + {rejected} rejected")
    return problems


# The columns `cleaned_table_problems` reads (every cleaned table has them): a check reads only these.
CLEANED_CHECKED_COLUMNS = ("customer_id", "timestamp", "quantity", "is_return", "unit_price", "amount")


def cleaned_table_problems(cleaned: pd.DataFrame) -> list[str]:
    """Cleaned rows: customer present, quantity non-zero (negative only on returns), price positive."""
    problems = []
    if cleaned["customer_id"].isna().any():
        problems.append(f"{int(cleaned['customer_id'].isna().sum())} rows have no customer")
    if cleaned["timestamp"].isna().any():
        problems.append(f"{int(cleaned['timestamp'].isna().sum())} rows have no timestamp")
    if "quantity" in cleaned.columns and cleaned["quantity"].notna().any():
        quantity = cleaned["quantity"]
        if (quantity == 0).any():
            problems.append(f"{int((quantity == 0).sum())} rows have zero quantity")
        unflagged = (quantity < 0) & ~cleaned["is_return"].astype(bool)
        if unflagged.any():
            problems.append(f"{int(unflagged.sum())} rows have negative quantity but are not flagged as returns")
    if "unit_price" in cleaned.columns and cleaned["unit_price"].notna().any():
        bad_price = ~(cleaned["unit_price"] > 0)
        if bad_price.any():
            problems.append(f"{int(bad_price.sum())} rows have a unit price that is not positive")
    if cleaned["amount"].isna().any():
        problems.append(f"{int(cleaned['amount'].isna().sum())} rows have no amount")
    return problems


def feature_table_problems(features: pd.DataFrame) -> list[str]:
    """One row per customer, no missing numbers, recency never negative."""
    problems = []
    duplicated = int(features["customer_id"].duplicated().sum())
    if duplicated:
        problems.append(f"{duplicated} customers appear more than once")
    if features["customer_id"].isna().any():
        problems.append("some rows have no customer id")
    for column in features.select_dtypes("number").columns:  # one column at a time: no table-sized mask
        count = int(features[column].isna().sum())
        if count:
            problems.append(f"column `{column}` has {count} missing values")
    if "recency_days" in features.columns and (features["recency_days"] < 0).any():
        problems.append(f"{int((features['recency_days'] < 0).sum())} customers have negative recency")
    return problems


def rejected_share(raw_rows: int, rejected_rows: int) -> float:
    return rejected_rows / raw_rows if raw_rows else 0.0


def rejected_share_problems(
    summary: Sequence[RejectedReason], raw_rows: int, max_rejected_share: float = MAX_REJECTED_SHARE
) -> list[str]:
    """Blocking: more than `max_rejected_share` of the raw rows rejected means the numbers downstream
    would describe a different population than the log. The problem names the top reasons with
    example values, so the user sees what to fix (a column mapping, a date format, a placeholder).

    `summary` is `cleaning.rejected_reasons_summary(rejected, raw_rows)` over every month of the run.
    """
    share = rejected_share(raw_rows, sum(reason.rows for reason in summary))
    if share <= max_rejected_share:
        return []
    reasons = "; ".join(reason.describe() for reason in summary[:TOP_REASONS])
    return [
        f"{share:.1%} of {raw_rows:,} raw rows were rejected, more than max_rejected_share "
        f"{max_rejected_share:.1%}. Top reasons: {reasons}"
    ]


def rejected_reason_warnings(
    summary: Sequence[RejectedReason], warning_share: float = REJECTED_REASON_WARNING_SHARE
) -> list[str]:
    """Warnings: each reject reason holding more than `warning_share` of the raw rows, with examples."""
    return [reason.describe() for reason in summary if reason.share > warning_share]


def amount_agreement_warnings(agreement: AmountAgreement) -> list[str]:
    """Warning: lines whose given amount differs from quantity x unit_price (the amount is used)."""
    if not agreement.disagreeing_rows:
        return []
    examples = f", e.g. {'; '.join(agreement.examples)}" if agreement.examples else ""
    return [
        f"{agreement.disagreeing_rows:,} of {agreement.compared_rows:,} lines "
        f"({agreement.disagreeing_share:.1%}) have an amount that differs from quantity x unit_price by more "
        f"than {agreement.tolerance:.1%}; the given amount is used{examples}"
    ]


def stability_problem(stability: float, params: Mapping) -> str:
    """Why a stability warning fired, with what was measured: refits on resamples against the final
    model, both of sizes that do not grow with the data, so the figure reads alike at any scale."""
    return (
        f"mean bootstrap ARI {stability:.3f}: {params.get('bootstraps')} refits on "
        f"{params.get('bootstrap_sample_size'):,} resampled customers agree that little with the final "
        f"model (fitted on {params.get('fit_sample_size'):,} customers, feature set {params.get('feature_set')}); "
        "the segments depend on which customers are sampled"
    )


def unassigned_customers(labels: np.ndarray, customer_ids: np.ndarray, expected_ids: pd.Series) -> list[str]:
    """Every customer of the feature table has exactly one cluster (no noise label left)."""
    problems = []
    assigned = pd.Index(np.asarray(customer_ids).astype(str))
    missing = pd.Index(expected_ids.astype(str).to_numpy()).difference(assigned)  # sorted, unique
    if len(missing):
        problems.append(f"{len(missing)} customers have no cluster (e.g. {list(missing[:3])})")
    if (labels < 0).any():
        problems.append(f"{int((labels < 0).sum())} customers are left as noise (label -1)")
    return problems


def cluster_count_problems(n_clusters: int, k_min: int, k_max: int, chooses_k: bool) -> list[str]:
    """k within the configured bounds; a density method (no k) must still find at least one cluster."""
    if chooses_k and not k_min <= n_clusters <= k_max:
        return [f"{n_clusters} clusters is outside the configured bounds {k_min}..{k_max}"]
    if not chooses_k and n_clusters < 1:
        return ["no cluster was found"]
    return []


def empty_cluster_problems(labels: np.ndarray, n_clusters: int) -> list[str]:
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)
    empty = [int(c) for c in np.flatnonzero(sizes == 0)]
    return [f"clusters {empty} have no customer"] if empty else []

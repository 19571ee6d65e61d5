"""Clean stage: each raw row becomes either a cleaned row or a rejected row with its reason."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_CHANGED_MONTHS,
)
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings, run_date
from segmentation_pipeline.retail import validation
from segmentation_pipeline.retail.cleaning import (
    REJECT_REASONS,
    clean_transactions,
    rejected_reasons_summary,
)

REASONS_TEXT = "; ".join(f"`{code}`: {text}" for code, text in REJECT_REASONS.items())


@dg.multi_asset(
    group_name="clean",
    partitions_def=transaction_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    ins={"raw_transactions": dg.AssetIn()},
    outs={
        "cleaned_transactions": dg.AssetOut(
            automation_condition=REFRESH_CHANGED_MONTHS,
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            description=(
                "Valid transaction lines: customer known, timestamp parsed, quantity non-zero, price "
                "positive, exact duplicates removed. Returns (negative quantity) are kept and flagged "
                "`is_return`; they feed return rate and net revenue."
            ),
        ),
        "rejected_transactions": dg.AssetOut(
            automation_condition=REFRESH_CHANGED_MONTHS,
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            description=f"Raw rows that failed cleaning, with all their columns and a `reject_reason`. {REASONS_TEXT}",
        ),
    },
)
def clean(context: dg.AssetExecutionContext, settings: PipelineSettings, raw_transactions: pd.DataFrame):
    transactions = settings.config.transactions
    result = clean_transactions(raw_transactions, as_of=run_date(context), rules=transactions.cleaning_rules())
    summary = rejected_reasons_summary(result.rejected, len(raw_transactions))
    warnings = validation.rejected_reason_warnings(summary, transactions.rejected_reason_warning_share)
    warnings += validation.amount_agreement_warnings(result.amount_agreement)
    for warning in warnings:
        context.log.warning(warning)
    agreement = result.amount_agreement
    yield dg.Output(
        result.cleaned,
        "cleaned_transactions",
        metadata={
            "returns": int(result.cleaned["is_return"].sum()),
            "amount_checked_rows": agreement.compared_rows,
            "amount_disagreeing_rows": agreement.disagreeing_rows,
        },
    )
    yield dg.Output(
        result.rejected,
        "rejected_transactions",
        metadata={
            "rows_per_reason": dg.MetadataValue.json({k: int(v) for k, v in result.reason_counts.items()}),
            "metric/rejected_share": len(result.rejected) / len(raw_transactions) if len(raw_transactions) else 0.0,
            "warnings": dg.MetadataValue.json(warnings),
        },
    )

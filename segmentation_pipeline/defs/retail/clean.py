"""Clean stage: each raw row becomes either a cleaned row or a rejected row with its reason."""

import dagster as dg

from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_CHANGED_MONTHS,
)
from segmentation_pipeline.orchestration.monthly import MonthlyTable, MonthlyTableWriter
from segmentation_pipeline.orchestration.partitions import transaction_months
from segmentation_pipeline.orchestration.resources import PipelineSettings, run_date
from segmentation_pipeline.retail import validation
from segmentation_pipeline.retail.cleaning import (
    REJECT_REASONS,
    clean_transactions,
    merged_amount_agreement,
    merged_reasons_summary,
    rejected_reasons_summary,
)
from segmentation_pipeline.retail.transactions import IDENTIFIER_COLUMNS, MONTH_COLUMN

REASONS_TEXT = "; ".join(f"`{code}`: {text}" for code, text in REJECT_REASONS.items())


@dg.multi_asset(
    group_name="clean",
    partitions_def=transaction_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    specs=[
        dg.AssetSpec(
            "cleaned_transactions",
            deps=["raw_transactions"],
            automation_condition=REFRESH_CHANGED_MONTHS,
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            description=(
                "Valid transaction lines: customer known, timestamp parsed, quantity non-zero, price "
                "positive, exact duplicates removed. Returns (negative quantity) are kept and flagged "
                "`is_return`; they feed return rate and net revenue."
            ),
        ),
        dg.AssetSpec(
            "rejected_transactions",
            deps=["raw_transactions"],
            automation_condition=REFRESH_CHANGED_MONTHS,
            kinds={"pandas", "parquet"},
            owners=OWNERS,
            description=f"Raw rows that failed cleaning, with all their columns and a `reject_reason`. {REASONS_TEXT}",
        ),
    ],
)
def clean(context: dg.AssetExecutionContext, settings: PipelineSettings):
    """Month by month: the rules are per row, and exact duplicates share their timestamp, so they
    always fall in the same month; one month of raw rows is in memory at a time."""
    transactions = settings.config.transactions
    run_id, months = context.run.run_id, context.partition_keys
    raw = MonthlyTable(settings, "raw_transactions", run_id)
    raw_rows = returns = 0
    summaries, agreements, reason_counts = [], [], dict.fromkeys(REJECT_REASONS, 0)
    with (
        MonthlyTableWriter(settings, "cleaned_transactions", run_id, months, MONTH_COLUMN, IDENTIFIER_COLUMNS) as cleaned,
        MonthlyTableWriter(settings, "rejected_transactions", run_id, months, MONTH_COLUMN, IDENTIFIER_COLUMNS) as rejected,
    ):
        for month, rows in raw.months(months):
            result = clean_transactions(rows, as_of=run_date(context), rules=transactions.cleaning_rules())
            cleaned.write_month(month, result.cleaned)
            rejected.write_month(month, result.rejected)
            raw_rows += len(rows)
            returns += int(result.cleaned["is_return"].sum())
            summaries.append(rejected_reasons_summary(result.rejected, len(rows)))
            agreements.append(result.amount_agreement)
            reason_counts = {code: reason_counts[code] + count for code, count in result.reason_counts.items()}
        cleaned_metadata, rejected_metadata = cleaned.finish(), rejected.finish()
    summary = merged_reasons_summary(summaries, raw_rows)
    agreement = merged_amount_agreement(agreements)
    warnings = validation.rejected_reason_warnings(summary, transactions.rejected_reason_warning_share)
    warnings += validation.amount_agreement_warnings(agreement)
    for warning in warnings:
        context.log.warning(warning)
    rejected_rows = sum(reason_counts.values())
    yield dg.MaterializeResult(
        asset_key="cleaned_transactions",
        metadata={
            **cleaned_metadata,
            "returns": returns,
            "amount_checked_rows": agreement.compared_rows,
            "amount_disagreeing_rows": agreement.disagreeing_rows,
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejected_transactions",
        metadata={
            **rejected_metadata,
            "rows_per_reason": dg.MetadataValue.json(reason_counts),
            "metric/rejected_share": rejected_rows / raw_rows if raw_rows else 0.0,
            "warnings": dg.MetadataValue.json(warnings),
        },
    )

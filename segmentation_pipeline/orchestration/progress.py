"""What the command line shows while a run executes: one line per asset as its step completes, the
checks that failed, and the user's own error message when a step fails (not Dagster's wrapper)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from segmentation_pipeline.orchestration.metadata import ROW_UNIT


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    seconds: float
    assets: int = 0
    checks_passed: int = 0
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# A step whose blocking checks failed fails with this; the failed checks have their own lines.
CHECKS_FAILED_ERROR = "DagsterAssetCheckFailedError"


def _innermost(error):
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error


def user_error_message(error) -> str:
    """The innermost cause of a step failure: the user's error, not Dagster's wrapper."""
    error = _innermost(error)
    message = error.message.strip()
    cls_name = getattr(error, "cls_name", None)
    return re.sub(rf"^[\w.]*{re.escape(cls_name)}: ", "", message) if cls_name else message


class Progress:
    """Event listener printing one line per asset as its step completes, and collecting check results."""

    def __init__(self, outcome: RunOutcome, emit: Callable[[str], None]):
        self.outcome = outcome
        self.emit = emit
        self.started: dict[str, float] = {}
        self.rows: dict[str, dict[str, str]] = defaultdict(dict)

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind, step = event.event_type_value, event.step_key
        if kind == "STEP_START":
            self.started[step] = entry.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            unit = materialization.metadata.get(ROW_UNIT)
            count = f"{rows.value:>10,} {unit.value if unit else 'rows':<9}" if rows else " " * 20
            self.rows[step][materialization.asset_key.to_user_string()] = count
        elif kind == "STEP_SUCCESS":
            seconds = entry.timestamp - self.started.get(step, entry.timestamp)
            for asset, count in self.rows.pop(step, {}).items():
                self.outcome.assets += 1
                self.emit(f"  {asset:<34} {count}  {seconds:6.2f}s")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                self.outcome.checks_passed += 1
                return
            text = f"check {name} failed: {evaluation.description}"
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                self.outcome.failed_checks.append(text)
            else:
                self.outcome.warnings.append(text)
            self.emit(f"  ! {text}")
        elif kind == "STEP_FAILURE":
            if getattr(_innermost(event.event_specific_data.error), "cls_name", None) == CHECKS_FAILED_ERROR:
                return  # reported as the failed checks, once each
            message = user_error_message(event.event_specific_data.error)
            self.outcome.errors.append(f"{step} failed: {message}")
            self.emit(f"  x {step} failed: {message}")

"""Raw leads -> clean leads (canonical columns, every value usable) + rejected leads (with a reason).

Only the outcome can make a lead unusable: a lead whose is_sale is missing or unreadable cannot be
counted as a conversion or a non-conversion, so it is rejected with the reason, never dropped. Every
other missing or placeholder value ("Select", "N/A", "-", empty) becomes `Unknown`, which is a
legitimate answer for a segment. A numeric age or years of experience is binned into ordered ranges;
seniority is read from the job title.

`lead_attributes` is the same preparation for rows that already have canonical names, so a new lead
sent to the model service is prepared exactly like the training leads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation_pipeline.cells import MAX_UNPARSEABLE_SHARE
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.leads.seniority import seniority_column
from segmentation_pipeline.leads.settings import CANONICAL_LEAD_COLUMNS, LeadsSettings

UNKNOWN = "Unknown"
TEXT_COLUMNS = ("state", "industry", "job_title", "education_level", "gender", "lead_source")
RANGE_COLUMNS = ("age_range", "years_experience")
TRUE_VALUES = frozenset({"true", "1", "1.0", "yes", "y"})
FALSE_VALUES = frozenset({"false", "0", "0.0", "no", "n"})
ACCEPTED_IS_SALE = "TRUE/FALSE, true/false, 1/0, yes/no, Y/N"
MISSING_IS_SALE = "is_sale is missing"


@dataclass(frozen=True)
class CleanedLeads:
    clean: pd.DataFrame  # source_row, canonical columns, seniority, extra features, is_sale (bool)
    rejected: pd.DataFrame  # the raw rows (all columns) + source_row + reject_reason


def clean_leads(raw: pd.DataFrame, settings: LeadsSettings, source: str = "leads") -> CleanedLeads:
    """Split the raw leads into clean and rejected rows; raw rows = clean rows + rejected rows."""
    mapped = settings.columns.mapped()
    is_sale, reasons = parse_is_sale(raw[mapped["is_sale"]], f"Column '{mapped['is_sale']}' (mapped to is_sale) in '{source}'")
    attributes = lead_attributes(canonical_frame(raw, settings), settings, source)
    attributes.insert(0, "source_row", np.arange(len(raw), dtype=np.int64))
    attributes["is_sale"] = is_sale
    valid = reasons.isna().to_numpy()
    clean = attributes[valid].reset_index(drop=True)
    clean["is_sale"] = clean["is_sale"].astype(bool)
    rejected = raw[~valid].reset_index(drop=True)
    rejected.insert(0, "source_row", np.flatnonzero(~valid).astype(np.int64))
    rejected["reject_reason"] = reasons[~valid].to_numpy()
    return CleanedLeads(clean=clean, rejected=rejected)


def canonical_frame(raw: pd.DataFrame, settings: LeadsSettings) -> pd.DataFrame:
    """The raw rows' feature columns under canonical names (mapped columns) or their own (extras)."""
    mapped = {name: column for name, column in settings.columns.mapped().items() if name != "is_sale"}
    extras = settings.categorical_features + settings.numeric_features
    columns = {**{name: raw[column] for name, column in mapped.items()}, **{name: raw[name] for name in extras}}
    return pd.DataFrame(columns, index=raw.index)


def parse_is_sale(values: pd.Series, described: str = "is_sale") -> tuple[pd.Series, pd.Series]:
    """(outcome as nullable boolean, reject reason or None) per row.

    Accepts TRUE/FALSE, true/false, 1/0, yes/no, Y/N (any case, surrounding blanks ignored) and boolean
    cells; raises InputDataError when most non-empty cells are something else (the wrong column).
    Each distinct cell is read once.
    """
    codes, distinct = pd.factorize(values.astype("object"), use_na_sentinel=True)
    outcomes, reasons = [], []
    for value in distinct:
        text = str(value).strip().lower()
        outcomes.append(1 if text in TRUE_VALUES else 0 if text in FALSE_VALUES else -1)
        if outcomes[-1] >= 0:
            reasons.append(None)
        elif text:
            reasons.append(f"is_sale {str(value).strip()[:40]!r} is not one of {ACCEPTED_IS_SALE}")
        else:
            reasons.append(MISSING_IS_SALE)
    # code -1 (a missing cell) picks the appended entries
    outcome = np.array(outcomes + [-1], dtype=np.int8)[codes]
    reason = np.array(reasons + [MISSING_IS_SALE], dtype=object)[codes]
    unreadable = int(((outcome < 0) & (reason != MISSING_IS_SALE)).sum())
    if unreadable > MAX_UNPARSEABLE_SHARE * (unreadable + int((outcome >= 0).sum())):
        examples = ", ".join(repr(v) for v in pd.unique(values[(outcome < 0) & (reason != MISSING_IS_SALE)])[:3])
        raise InputDataError(
            f"{described} does not hold outcomes: {unreadable:,} of its non-empty cells are not one of "
            f"{ACCEPTED_IS_SALE}, e.g. {examples}."
        )
    booleans = pd.array(outcome == 1, dtype="boolean")
    booleans[outcome < 0] = pd.NA
    return pd.Series(booleans, index=values.index), pd.Series(reason, index=values.index, dtype="object")


def lead_attributes(frame: pd.DataFrame, settings: LeadsSettings, source: str = "leads") -> pd.DataFrame:
    """Canonical lead attributes of rows named canonically (absent canonical columns are all Unknown):
    text columns and extra categorical features as categoricals with Unknown for missing/placeholder
    values, age and experience as ordered ranges, seniority from the title, extra numeric features as
    floats (NaN when missing)."""
    placeholders = {p.strip().casefold() for p in settings.placeholders}
    result: dict[str, pd.Series] = {}
    for name in TEXT_COLUMNS + settings.categorical_features:
        result[name] = _text_categories(frame[name] if name in frame else None, len(frame), placeholders)
    result["age_range"] = _ranges(frame.get("age_range"), len(frame), settings.age_bins, placeholders)
    result["years_experience"] = _ranges(frame.get("years_experience"), len(frame), settings.experience_bins, placeholders)
    result["seniority"] = seniority_column(result["job_title"])  # an Unknown title has no seniority phrase
    for name in settings.numeric_features:
        values = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)  # absent: Unknown
        result[name] = _numbers(values, placeholders, f"Column '{name}' (numeric feature) in '{source}'")
    ordered = [c for c in CANONICAL_LEAD_COLUMNS if c != "is_sale"] + ["seniority"]
    ordered += list(settings.categorical_features + settings.numeric_features)
    return pd.DataFrame({name: pd.Series(result[name].array, index=frame.index) for name in ordered})


def range_labels(edges: tuple[float, ...]) -> list[str]:
    """Ordered labels of the bins of `edges`: (18, 25, 35) -> ['<18', '18-24', '25-34', '35+']."""
    whole = all(float(edge).is_integer() for edge in edges)
    shown = [f"{int(e)}" if float(e).is_integer() else f"{e:g}" for e in edges]
    inner = [
        f"{low}-{int(high) - 1}" if whole else f"{low}-{shown[i + 1]}"
        for i, (low, high) in enumerate(zip(shown, edges[1:]))
    ]
    return [f"<{shown[0]}", *inner, f"{shown[-1]}+"]


def range_order(label: str) -> tuple[int, float, str]:
    """Sort key of a range label by its first number ('<18' before '18-24' before '65+'); labels
    without a number come last, alphabetically."""
    match = re.search(r"-?\d+(\.\d+)?", label)
    if match is None:
        return (1, 0.0, label)
    value = float(match.group())
    below = label.strip().startswith("<") or label.strip().lower().startswith(("under", "less than", "below"))
    return (0, value - 0.5 if below else value, label)


def _text_categories(values: pd.Series | None, n: int, placeholders: set[str]) -> pd.Series:
    """Stripped text as a categorical; missing and placeholder cells are Unknown."""
    if values is None:
        return _categorical([], np.full(n, -1, dtype=np.int64))
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    return _categorical([_clean_text(value, placeholders) for value in distinct], codes)


def _ranges(values: pd.Series | None, n: int, edges: tuple[float, ...], placeholders: set[str]) -> pd.Series:
    """Ordered range labels: numbers are binned by `edges`, text ranges ('25-34') are kept as written."""
    if values is None:
        return _text_categories(None, n, placeholders)
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    text = [_clean_text(value, placeholders) for value in distinct]
    numbers = pd.to_numeric(pd.Series(text, dtype="object"), errors="coerce").to_numpy(dtype=float)
    labels = np.array(range_labels(edges), dtype=object)
    binned = labels[np.searchsorted(np.asarray(edges, dtype=float), np.nan_to_num(numbers), side="right")]
    return _categorical(list(np.where(np.isfinite(numbers), binned, np.array(text, dtype=object))), codes)


def _numbers(values: pd.Series, placeholders: set[str], described: str) -> pd.Series:
    """Floats; missing and placeholder cells are NaN; a column of mostly non-numbers is refused.
    Each distinct cell is read once."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    text = pd.Series([_clean_text(value, placeholders) for value in distinct] + [UNKNOWN], dtype="object")
    numbers = pd.to_numeric(text.where(text != UNKNOWN), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(numbers) & (text != UNKNOWN).to_numpy()
    bad_rows = int(bad[codes].sum())
    if bad_rows > MAX_UNPARSEABLE_SHARE * max(int((text != UNKNOWN).to_numpy()[codes].sum()), 1):
        examples = ", ".join(repr(v) for v in text[bad].head(3))
        raise InputDataError(f"{described} does not hold numbers: {bad_rows:,} cells are not numbers, e.g. {examples}.")
    return pd.Series(numbers[codes], index=values.index)  # code -1 (a missing cell) picks the appended NaN


def _clean_text(value, placeholders: set[str]) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return UNKNOWN
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))  # 42.0 from a spreadsheet cell reads as 42
    return UNKNOWN if text.casefold() in placeholders else text


def _categorical(per_distinct: list[str], codes: np.ndarray) -> pd.Series:
    """Rows' cleaned texts as a categorical built from the distinct values' codes (no string per row).

    Categories are sorted by range order when they are ranges, else by name; Unknown comes last and is
    what code -1 (a missing cell) becomes.
    """
    cleaned = per_distinct + [UNKNOWN]
    categories = sorted(set(cleaned) - {UNKNOWN}, key=range_order) + [UNKNOWN]
    position = {category: index for index, category in enumerate(categories)}
    distinct_codes = np.array([position[text] for text in cleaned], dtype=np.int32)
    return pd.Series(pd.Categorical.from_codes(distinct_codes[codes], categories=categories))

"""The `leads:` section of pipeline.yml: where the leads come from, how their columns map, how they
are clustered and tiered. Every default runs with no file (the embedded synthetic leads).

A feature that is only known after the outcome (the length of the sales call, a won/lost stage...)
makes any conversion score look excellent and useless, so such columns are refused here, before
anything runs, rather than discovered in a suspiciously good metric.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CANONICAL_LEAD_COLUMNS = (
    "state",
    "industry",
    "job_title",
    "education_level",
    "age_range",
    "years_experience",
    "gender",
    "lead_source",
    "is_sale",
)
# Columns the pipeline itself adds to the clean table; a feature cannot take one of these names.
DERIVED_LEAD_COLUMNS = ("source_row", "seniority", "reject_reason")

# Names of columns that are known only once the outcome is (or are the outcome under another name).
# Matched on the words of a column name: "Call Duration", "last_call_duration" and "duration" all match
# "duration"; "poutcome" (the outcome of an earlier campaign, known beforehand) matches nothing.
DEFAULT_LEAKAGE_COLUMNS = (
    "duration",
    "call duration",
    "converted",
    "conversion",
    "is sale",
    "sale",
    "sold",
    "won",
    "closed won",
    "deal stage",
    "opportunity stage",
    "lead status",
    "y",
)
DEFAULT_PLACEHOLDERS = ("", "-", "--", "?", "n/a", "na", "none", "null", "nan", "select", "unknown", "not provided")


def name_words(name: str) -> tuple[str, ...]:
    """A column name as lower-case words: 'Call_Duration (s)' -> ('call', 'duration', 's')."""
    return tuple(re.findall(r"[a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name)).lower()))


def leaks_outcome(name: str, leakage_columns: tuple[str, ...]) -> str | None:
    """The leakage entry that `name` matches (its words appear in a row in the name), or None."""
    words = name_words(name)
    for entry in leakage_columns:
        pattern = name_words(entry)
        if pattern and any(words[i : i + len(pattern)] == pattern for i in range(len(words) - len(pattern) + 1)):
            return entry
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadColumns(_Section):
    """Canonical lead column -> the column's name in the file (null = not in the file, except is_sale)."""

    state: str | None = "State"
    industry: str | None = "Industry"
    job_title: str | None = "Job Title"
    education_level: str | None = "Education Level"
    age_range: str | None = "Age_range"
    years_experience: str | None = "Years of Experience"
    gender: str | None = "Gender"
    lead_source: str | None = "Lead Source"
    is_sale: str = "is_sale"

    def mapped(self) -> dict[str, str]:
        """Canonical name -> file column, for the columns the file has."""
        return {name: column for name, column in self.model_dump().items() if column is not None}


class ValueTiers(_Section):
    """Lowest conversion rate of each tier; a rate below LOW is MINIMAL."""

    PREMIUM: float = Field(0.50, gt=0, le=1)
    HIGH: float = Field(0.25, gt=0, le=1)
    MEDIUM: float = Field(0.10, gt=0, le=1)
    LOW: float = Field(0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _descending(self) -> ValueTiers:
        values = [self.PREMIUM, self.HIGH, self.MEDIUM, self.LOW]
        if any(higher <= lower for higher, lower in zip(values, values[1:])):
            raise ValueError(f"tier thresholds must fall from PREMIUM to LOW, got {self.model_dump()}")
        return self

    def tier_of(self, rate: float) -> str:
        for tier, minimum in self.model_dump().items():
            if rate >= minimum:
                return tier
        return "MINIMAL"


class LeadsSyntheticSettings(_Section):
    """The embedded generator: how many leads, the seed, and the lead personas file (null = shipped)."""

    leads: int = Field(5000, ge=10)
    seed: int = 42
    personas_path: str | None = None


def _increasing(name: str, edges: tuple[float, ...]) -> tuple[float, ...]:
    if len(edges) < 1 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"{name} must be a non-empty list of increasing numbers, got {list(edges)}")
    return edges


class LeadsSettings(_Section):
    """The `leads:` section.

    columns: canonical -> file column. categorical_features / numeric_features: further file columns
    clustered and scored as nominal categories / numbers. age_bins / experience_bins: edges that turn a
    numeric age or years-of-experience column into ordered ranges ("<18", "18-24", ..., "65+").
    k: 4 (the reference tool's count, for comparability) or "auto" (best silhouette in k_min..k_max).
    min_cluster_size: a smaller cluster gets no value tier (its rate is too uncertain to rank).
    max_categories: one-hot columns kept per nominal column (the most frequent values; the rest share
    none). score_folds: cross-validation folds of the conversion score (out-of-fold metrics and the
    calibration). score_sample_size: leads the score is fitted and measured on (a seeded sample when
    there are more; ~60 coefficients are fully determined long before that, and every lead is scored). leakage_columns: names refused as features (see `leaks_outcome`).
    """

    source: Literal["synthetic", "file"] = "synthetic"
    path: str | None = None
    read_options: dict[str, Any] = Field(default_factory=dict)
    encoding: str | None = None
    columns: LeadColumns = LeadColumns()
    placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    categorical_features: tuple[str, ...] = ()
    numeric_features: tuple[str, ...] = ()
    age_bins: tuple[float, ...] = (18, 25, 35, 45, 55, 65)
    experience_bins: tuple[float, ...] = (0, 3, 6, 11, 16, 21)
    k: int | Literal["auto"] = 4
    k_min: int = Field(2, ge=2)
    k_max: int = Field(10, ge=2)
    seed: int = 42
    bootstraps: int = Field(10, ge=0)
    min_cluster_size: int = Field(100, ge=1)
    max_categories: int = Field(20, ge=1)
    score_folds: int = Field(3, ge=2)
    score_sample_size: int = Field(200_000, ge=100)
    value_tiers: ValueTiers = ValueTiers()
    leakage_columns: tuple[str, ...] = DEFAULT_LEAKAGE_COLUMNS
    synthetic: LeadsSyntheticSettings = LeadsSyntheticSettings()

    @field_validator("age_bins", "experience_bins")
    @classmethod
    def _bins_increase(cls, value: tuple[float, ...], info) -> tuple[float, ...]:
        return _increasing(info.field_name, value)

    @model_validator(mode="after")
    def _consistent(self) -> LeadsSettings:
        if self.source == "file" and not self.path:
            raise ValueError("`path` is required when source is `file`")
        if self.k_min > self.k_max:
            raise ValueError(f"need k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if self.k != "auto" and not self.k_min <= self.k <= self.k_max:
            raise ValueError(f"k must be 'auto' or an integer in {self.k_min}..{self.k_max}, got {self.k!r}")
        extras = self.categorical_features + self.numeric_features
        repeated = sorted({name for name in extras if extras.count(name) > 1})
        if repeated:
            raise ValueError(f"feature column(s) {repeated} listed more than once")
        mapped = self.columns.mapped()
        features = {column for name, column in mapped.items() if name != "is_sale"}
        taken = sorted(set(extras) & (features | set(CANONICAL_LEAD_COLUMNS) | set(DERIVED_LEAD_COLUMNS)))
        if taken:
            raise ValueError(f"feature column(s) {taken} are already mapped or are names the pipeline uses")
        feature_columns = [(f"columns.{name}", column) for name, column in mapped.items() if name != "is_sale"]
        feature_columns += [("categorical_features", name) for name in self.categorical_features]
        feature_columns += [("numeric_features", name) for name in self.numeric_features]
        for key, column in feature_columns:
            if column == mapped["is_sale"]:
                raise ValueError(f"{key}: '{column}' is the outcome column (is_sale) and cannot be a feature")
            entry = leaks_outcome(column, self.leakage_columns)
            if entry is not None:
                raise ValueError(
                    f"{key}: '{column}' looks like '{entry}', a value known only after the outcome "
                    "(it leaks is_sale into the segments and the score); leave it out"
                )
        return self

    def source_path(self) -> Path | None:
        """The configured file (already resolved against the config's folder by `PipelineConfig.leads_settings`)."""
        return Path(self.path).expanduser() if self.path else None

"""The one pipeline configuration file: its schema, defaults and validation.

Every section rejects unknown keys, so a typo fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import fields
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from segmentation_pipeline.clustering.base import ClusteringSettings
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH, resolve_against
from segmentation_pipeline.retail import cleaning, validation

CONFIG_ENV_VAR = "SEGMENTATION_CONFIG"

OPEN_ENDED = "open"  # last_month: partitions keep growing with the calendar (a live feed)

CANONICAL_COLUMNS = (
    "customer_id",
    "invoice_id",
    "timestamp",
    "quantity",
    "unit_price",
    "amount",
    "product_id",
    "description",
    "country",
    "department",
    "product_class",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Section):
    """Canonical column name -> the column's name in the user's file (null = not in the file)."""

    customer_id: str = "CustomerID"
    invoice_id: str | None = "InvoiceNo"
    timestamp: str = "InvoiceDate"
    quantity: str | None = "Quantity"
    unit_price: str | None = "UnitPrice"
    amount: str | None = None
    product_id: str | None = "StockCode"
    description: str | None = "Description"
    country: str | None = "Country"
    department: str | None = None
    product_class: str | None = None

    @model_validator(mode="after")
    def _revenue_is_derivable(self) -> ColumnMapping:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError("map either `amount` or both `quantity` and `unit_price`")
        return self

    def as_dict(self) -> dict[str, str | None]:
        return self.model_dump()


class SyntheticSettings(_Section):
    customers: int = Field(2000, ge=2)
    months: int = Field(12, ge=1, le=120)
    seed: int = 42
    start_month: str = "2025-01"

    @field_validator("start_month")
    @classmethod
    def _is_month(cls, value: str) -> str:
        return _check_month(value)


class TransactionsSettings(_Section):
    source: Literal["synthetic", "file"] = "synthetic"
    path: str | None = None
    read_options: dict[str, Any] = Field(default_factory=dict)
    encoding: str | None = None
    timestamp_format: str | None = None
    first_month: str | None = None
    last_month: str | None = None
    columns: ColumnMapping = ColumnMapping()
    drop_exact_duplicates: bool = True
    # Customer ids meaning "no customer", compared case-insensitively: rejected as missing_customer.
    placeholder_customer_ids: tuple[str, ...] = cleaning.PLACEHOLDER_CUSTOMER_IDS
    # Timestamps before this date are placeholders (1900-01-01), rejected as implausible_timestamp.
    earliest_timestamp: dt.date = cleaning.EARLIEST_TIMESTAMP.date()
    # A line amount beyond this (or infinite) is rejected as implausible_value.
    max_line_amount: float = Field(cleaning.MAX_LINE_AMOUNT, gt=0)
    # amount vs quantity x unit_price: relative difference above which a line counts as disagreeing.
    amount_mismatch_tolerance: float = Field(cleaning.AMOUNT_MISMATCH_TOLERANCE, ge=0)
    # Blocking check: the run fails when more of the raw rows are rejected; each reason above
    # rejected_reason_warning_share of the raw rows is a warning.
    max_rejected_share: float = Field(validation.MAX_REJECTED_SHARE, ge=0, le=1)
    rejected_reason_warning_share: float = Field(validation.REJECTED_REASON_WARNING_SHARE, ge=0, le=1)
    synthetic: SyntheticSettings = SyntheticSettings()

    @field_validator("first_month")
    @classmethod
    def _is_month(cls, value: str | None) -> str | None:
        return None if value is None else _check_month(value)

    @field_validator("last_month")
    @classmethod
    def _is_month_or_open(cls, value: str | None) -> str | None:
        return value if value in (None, OPEN_ENDED) else _check_month(value)

    @model_validator(mode="after")
    def _file_needs_path(self) -> TransactionsSettings:
        if self.source == "file" and not self.path:
            raise ValueError("`path` is required when source is `file`")
        return self

    def cleaning_rules(self) -> cleaning.CleaningRules:
        return cleaning.CleaningRules(
            drop_exact_duplicates=self.drop_exact_duplicates,
            earliest_timestamp=pd.Timestamp(self.earliest_timestamp),
            placeholder_customer_ids=self.placeholder_customer_ids,
            max_line_amount=self.max_line_amount,
            amount_mismatch_tolerance=self.amount_mismatch_tolerance,
        )



class AutomationSettings(_Section):
    """Schedules and sensors; they start STOPPED unless `*_running` says otherwise."""

    monthly_cron: str = "0 3 2 * *"  # 03:00 on the 2nd: the newest month is complete
    weekly_cron: str = "0 4 * * 0"  # 04:00 on Sundays: full refresh
    timezone: str = "UTC"
    schedules_running: bool = False
    inbox_dir: str = "data/inbox"
    inbox_sensor_running: bool = False
    inbox_poll_seconds: int = Field(30, ge=5)
    automation_sensor_running: bool = False


class ExecutorSettings(_Section):
    """How a run's steps execute: in this process (fast locally) or spread out for scale."""

    type: Literal["in_process", "multiprocess", "k8s", "celery"] = "in_process"
    max_concurrent: int = Field(2, ge=1)
    config: dict[str, Any] = Field(default_factory=dict)  # passed to the k8s / celery executor


class LLMSettings(_Section):
    """Optional narrative from an OpenAI-compatible chat-completions endpoint; off by default."""

    enabled: bool = False
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key
    timeout_seconds: float = Field(30.0, gt=0)
    temperature: float = Field(0.2, ge=0, le=2)


class PipelineConfig(_Section):
    output_dir: str = "data/outputs"
    transactions: TransactionsSettings = TransactionsSettings()
    clustering: dict[str, Any] = Field(default_factory=dict)
    llm: LLMSettings = LLMSettings()
    automation: AutomationSettings = AutomationSettings()
    executor: ExecutorSettings = ExecutorSettings()

    @field_validator("clustering")
    @classmethod
    def _valid_clustering(cls, value: dict[str, Any]) -> dict[str, Any]:
        clustering_settings(value)
        return value

    def clustering_settings(self) -> ClusteringSettings:
        return clustering_settings(self.clustering)

    # Folder that relative paths are resolved against: the config file's folder, or the current
    # directory for the built-in default (set by `parse_config`).
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def resolve(self, path: str | Path) -> Path:
        return resolve_against(self._base_dir, path)

    def output_path(self) -> Path:
        return self.resolve(self.output_dir)

    def transactions_path(self) -> Path | None:
        return self.resolve(self.transactions.path) if self.transactions.path else None

    def inbox_path(self) -> Path:
        return self.resolve(self.automation.inbox_dir)


def clustering_settings(section: dict[str, Any]) -> ClusteringSettings:
    """The `clustering` section as the core's settings; `methods` holds per-method overrides."""
    allowed = [f.name for f in fields(ClusteringSettings) if f.name != "overrides"] + ["methods"]
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    values = dict(section)
    overrides = values.pop("methods", None) or {}
    if not isinstance(overrides, dict):
        raise ValueError("`methods` must map a method name to its settings")
    for key in ("features", "log1p_features"):
        if key in values and not isinstance(values[key], (list, tuple)):
            raise ValueError(f"`{key}` must be a list of column names")
    return ClusteringSettings(**values, overrides=overrides)


def _check_month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise ValueError(f"expected a month like 2025-01, got {value!r}")
    return value


def _describe(error: dict, model: type[BaseModel]) -> str:
    """One readable line per problem, naming the dotted key."""
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"{location}: unknown key (allowed: {', '.join(allowed)})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message} (got {error.get('input')!r})"


def _allowed_keys(model: type[BaseModel], parents: tuple) -> list[str]:
    for part in parents:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> PipelineConfig:
    """Validate an already-loaded mapping, raising ConfigError that names the source and keys.

    Relative paths in it will resolve against `base_dir` (default: the current directory)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(error, PipelineConfig) for error in exc.errors())
        raise ConfigError(f"{source}: invalid configuration\n  {problems}") from None
    config._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    return config


def config_path_in_use(path: str | Path | None = None) -> Path:
    """The config file: `path`, else $SEGMENTATION_CONFIG, else the built-in default; a relative
    path is relative to the current directory, like any command-line path."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    return Path(chosen).expanduser().resolve() if chosen else DEFAULT_CONFIG_PATH


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Load and validate the config file (see `config_path_in_use`)."""
    config_path = config_path_in_use(path)
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from None
    base_dir = Path.cwd() if config_path == DEFAULT_CONFIG_PATH else config_path.parent
    return parse_config(data, source=str(config_path), base_dir=base_dir)

"""The one pipeline configuration file: its schema, defaults and validation.

Every section rejects unknown keys, so a typo fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from segmentation_pipeline.clustering.base import (
    METHOD_NAMES,
    SETTING_NAMES,
    ClusteringSettings,
    bounds_problems,
    setting_problem,
)
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.leads.settings import LeadsSettings
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH, resolve_against
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline.retail import cleaning, validation
from segmentation_pipeline.retail.features import (
    BASIC_FEATURE_PREFIXES,
    BASIC_NUMERIC_FEATURES,
    is_basic_feature,
)
from segmentation_pipeline.service.settings import ServiceSettings

CONFIG_ENV_VAR = "SEGMENTATION_CONFIG"

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


class PublicationSettings(_Section):
    """How many published output sets are kept (the current one and earlier ones for rollback)."""

    keep_sets: int = Field(3, ge=1)


# ------------------------------------------------------------------------------------------ clustering
# The `clustering` section: every setting of `ClusteringSettings` (same names, types and defaults) plus
# `methods`. Each key is checked on its own (so an error names that key, e.g.
# `clustering.methods.gmm.gmm_covariance_type`), by the same checks `ClusteringSettings` runs.
#
# `methods` names the ENABLED methods; only those run. Two shapes are accepted:
#   methods: [kmeans, gmm]                                   # enabled, no overrides
#   methods: {kmeans: {}, gmm: {gmm_covariance_type: tied}}  # enabled, each with its overrides ({} or null: none)
# Without the key (or null) every method runs; an empty list or mapping is an error.

_SETTING_TYPES = typing.get_type_hints(ClusteringSettings)
_DEFAULT_SETTINGS = ClusteringSettings()
_NULLABLE_SETTINGS = ("min_cluster_size", "min_samples")
# k after its bounds, so that its check sees them.
_SETTING_ORDER = [name for name in SETTING_NAMES if name != "k"]
_SETTING_ORDER.insert(_SETTING_ORDER.index("k_max") + 1, "k")
# The shared settings, for the checks of a method's overrides against them.
_SHARED_SETTINGS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("shared_clustering_settings")


def _check_setting(name: str, value: Any) -> Any:
    if value is None and name not in _NULLABLE_SETTINGS:
        raise ValueError("must not be null")
    problem = setting_problem(name, value)
    if problem:
        raise ValueError(problem)
    if name in ("features", "log1p_features"):
        unknown = [feature for feature in value if not is_basic_feature(feature)]
        if unknown:
            patterns = ", ".join(f"{prefix}<department>" for prefix in BASIC_FEATURE_PREFIXES)
            raise ValueError(
                f"{', '.join(map(repr, unknown))}: not a numeric column of the customer feature table "
                f"(known: {', '.join(BASIC_NUMERIC_FEATURES)}, {patterns})"
            )
    return value


class _SharedClusteringSettings(_Section):
    @field_validator("*")
    @classmethod
    def _valid_setting(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "methods":
            return value
        _check_setting(info.field_name, value)
        if info.field_name in ("k_max", "k"):  # k_min, k_max and k are validated in this order
            bounds = {**info.data, info.field_name: value}
            if {"k_min", "k_max"} <= bounds.keys():
                for key, problem in bounds_problems(bounds.get("k", "auto"), bounds["k_min"], bounds["k_max"]):
                    if key == info.field_name:
                        raise ValueError(problem)
        return value


class _MethodOverrides(_Section):
    """One method's overrides: any shared setting; only the keys given count."""

    @model_validator(mode="before")
    @classmethod
    def _known_settings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(SETTING_NAMES))
            if unknown:
                raise ValueError(f"unknown setting {unknown[0]!r} (allowed: {', '.join(SETTING_NAMES)})")
        return data

    @field_validator("*")
    @classmethod
    def _valid_setting(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_setting(info.field_name, value)

    @model_validator(mode="after")
    def _within_shared_bounds(self) -> _MethodOverrides:
        merged = {**_SHARED_SETTINGS.get({}), **self.values()}
        if {"k_min", "k_max"} <= merged.keys() and {"k", "k_min", "k_max"} & self.values().keys():
            for key, problem in bounds_problems(merged.get("k", "auto"), merged["k_min"], merged["k_max"]):
                raise ValueError(f"{key} {problem}, got {merged[key]!r}")
        return self

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


MethodOverrides = create_model(
    "MethodOverrides",
    __base__=_MethodOverrides,
    **{name: (_SETTING_TYPES[name] | None, None) for name in _SETTING_ORDER},
)


class _ClusteringSection(_SharedClusteringSettings):
    @field_validator("methods", mode="wrap", check_fields=False)
    @classmethod
    def _enabled_methods(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            if len(set(value)) != len(value):
                raise ValueError("lists a method twice")
            value = {name: {} for name in value}
        if isinstance(value, dict):
            if not value:
                raise ValueError(
                    f"names the methods to run, so it cannot be empty: list some of {', '.join(METHOD_NAMES)}, "
                    "or leave `methods` out to run them all"
                )
            value = {name: {} if overrides is None else overrides for name, overrides in value.items()}
        token = _SHARED_SETTINGS.set(dict(info.data))
        try:
            return handler(value)
        finally:
            _SHARED_SETTINGS.reset(token)

    def enabled_methods(self) -> tuple[str, ...]:
        """The methods to run, in the canonical order."""
        return tuple(name for name in METHOD_NAMES if self.methods is None or name in self.methods)

    def settings(self) -> ClusteringSettings:
        shared = {name: getattr(self, name) for name in SETTING_NAMES}
        overrides = {name: overrides.values() for name, overrides in (self.methods or {}).items()}
        return ClusteringSettings(**shared, overrides=overrides)


ClusteringSection = create_model(
    "ClusteringSection",
    __base__=_ClusteringSection,
    **{name: (_SETTING_TYPES[name], getattr(_DEFAULT_SETTINGS, name)) for name in _SETTING_ORDER},
    methods=(dict[Literal[METHOD_NAMES], MethodOverrides] | None, None),
)


class PipelineConfig(_Section):
    output_dir: str = "data/outputs"
    transactions: TransactionsSettings = TransactionsSettings()
    clustering: ClusteringSection = ClusteringSection()
    llm: LLMSettings = LLMSettings()
    automation: AutomationSettings = AutomationSettings()
    executor: ExecutorSettings = ExecutorSettings()
    publication: PublicationSettings = PublicationSettings()
    leads: LeadsSettings = LeadsSettings()
    persona_texts: PersonaTextsSettings = PersonaTextsSettings()
    service: ServiceSettings = ServiceSettings()  # `segmentation-pipeline serve`

    def clustering_settings(self) -> ClusteringSettings:
        return self.clustering.settings()

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

    def leads_settings(self) -> LeadsSettings:
        """The `leads` section with its relative `path` resolved."""
        return self.leads.model_copy(update={"path": str(self.resolve(self.leads.path))}) if self.leads.path else self.leads

    def persona_texts_settings(self) -> PersonaTextsSettings:
        """The `persona_texts` section with its relative `path` and `embedding.model_path` resolved."""
        section = self.persona_texts
        embedding = section.embedding
        if embedding.model_path:
            embedding = embedding.model_copy(update={"model_path": str(self.resolve(embedding.model_path))})
        path = str(self.resolve(section.path)) if section.path else None
        return section.model_copy(update={"path": path, "embedding": embedding})


def _check_month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise ValueError(f"expected a month like 2025-01, got {value!r}")
    return value


MAX_ECHOED_INPUT = 80


def _describe(error: dict, model: type[BaseModel]) -> str:
    """One readable line per problem, naming the dotted key."""
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        return f"{location}: unknown key (allowed: {', '.join(allowed)})"
    message = error["msg"].removeprefix("Value error, ")
    given = repr(error.get("input"))
    # A whole section as the input says nothing the key does not: only short values are echoed.
    return f"{location}: {message}" + (f" (got {given})" if len(given) <= MAX_ECHOED_INPUT else "")


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
        problems = [_describe(error, PipelineConfig) for error in exc.errors()]
        if len(problems) == 1:  # the usual case: one line naming the file and the key
            raise ConfigError(f"{source}: {problems[0]}") from None
        listed = "\n  ".join(problems)
        raise ConfigError(f"{source}: invalid configuration ({len(problems)} problems)\n  {listed}") from None
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

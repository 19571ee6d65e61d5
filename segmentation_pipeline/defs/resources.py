"""Resources shared by every stage: the validated config, the parquet table store and the executor."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import dagster as dg
import joblib
import pandas as pd

from segmentation_pipeline.config import ExecutorSettings, PipelineConfig, active_config, load_config
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.narrative import NarrativeError, request_narrative
from segmentation_pipeline.storage import TableStore, atomic_path, record_in_manifest
from segmentation_pipeline.retail.transactions import MONTH_COLUMN


class PipelineSettings(dg.ConfigurableResource):
    """The pipeline's YAML configuration (validated); empty path = $SEGMENTATION_CONFIG or the default."""

    config_path: str = ""

    def load(self) -> PipelineConfig:
        return load_config(self.config_path) if self.config_path else active_config()

    def output_dir(self) -> Path:
        return self.load().output_path()

    def cache_dir(self) -> Path:
        return self.output_dir() / "cache"


def table_metadata(df: pd.DataFrame, files: list[Path]) -> dict:
    """Row count, column schema and written files, the metadata every table asset carries."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in df.dtypes.items()])
    return {
        "dagster/row_count": dg.MetadataValue.int(len(df)),
        "dagster/column_schema": schema,
        "files": dg.MetadataValue.json([str(f) for f in files]),
    }


def publish(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    files: list[Path],
    table: pd.DataFrame,
    **metadata,
) -> None:
    """Attach the standard metadata (rows, schema, files) plus extras, and record the files in the manifest."""
    record_in_manifest(settings.output_dir(), context.asset_key.to_user_string(), context.run.run_id, files, len(table))
    context.add_output_metadata({**table_metadata(table, files), **metadata})


def month_of_partition_key(partition_key: str) -> str:
    """Monthly partition keys are '2025-01-01'; files and the `month` column use '2025-01'."""
    return partition_key[:7]


class TableIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as parquet under `<output_dir>/tables`, one file per month for partitioned assets.

    Handles partition ranges, so a single run (or a single-run backfill) can write many months.
    """

    settings: PipelineSettings

    def _store(self) -> TableStore:
        return TableStore(self.settings.output_dir())

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        store = self._store()
        name = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            path = store.write(name, obj)
            record_in_manifest(store.output_dir, name, context.run_id, [path], len(obj))
            context.add_output_metadata(table_metadata(obj, [path]))
            return
        months = [month_of_partition_key(k) for k in context.asset_partition_keys]
        by_month = dict(tuple(obj.groupby(MONTH_COLUMN, sort=False))) if len(obj) else {}
        written = {}
        for month in months:
            part = by_month.get(month, obj.iloc[0:0])
            written[month] = ([store.write(name, part, partition=month)], len(part))
        record_in_manifest(store.output_dir, name, context.run_id, [], None, partitions=written)
        metadata = table_metadata(obj, [path for paths, _ in written.values() for path in paths])
        metadata["rows_per_month"] = dg.MetadataValue.json({m: rows for m, (_, rows) in written.items()})
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        name = context.asset_key.to_user_string()
        if context.has_asset_partitions:
            months = [month_of_partition_key(k) for k in context.asset_partition_keys]
            return self._store().read(name, months)
        return self._store().read(name)


class LLMNarrator(dg.ConfigurableResource):
    """OpenAI-compatible chat-completions endpoint for optional persona narratives; off by default.

    Never fails a run: time-outs, HTTP errors and malformed replies log a warning and return None.
    """

    enabled: bool = False
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_seconds: float = 30.0
    temperature: float = 0.2

    def narrate(self, prompt: str, log) -> str | None:
        if not self.enabled:
            return None
        try:
            return request_narrative(
                prompt,
                self.base_url,
                self.model,
                os.environ.get(self.api_key_env),
                self.timeout_seconds,
                self.temperature,
            )
        except NarrativeError as exc:
            log.warning(f"LLM narrative skipped, using the deterministic text: {exc}")
            return None


def object_path(settings: PipelineSettings, asset: str) -> Path:
    return settings.output_dir() / "objects" / f"{asset}.joblib"


def load_object(settings: PipelineSettings, asset: str) -> object:
    """The latest stored Python result of `asset` (checks read these without re-running anything)."""
    path = object_path(settings, asset)
    if not path.exists():
        raise FileNotFoundError(f"{asset} has not been materialized yet ({path})")
    return joblib.load(path)


class ObjectIOManager(dg.ConfigurableIOManager):
    """Passes Python results (fitted clusterings, profiles, personas) between steps as joblib files.

    They live under `<output_dir>/objects`; the files users read (JSON, YAML, CSV, PNG, bundles) are
    written by the assets themselves.
    """

    settings: PipelineSettings

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        with atomic_path(object_path(self.settings, context.asset_key.to_python_identifier())) as temp:
            joblib.dump(obj, temp)

    def load_input(self, context: dg.InputContext) -> object:
        return load_object(self.settings, context.asset_key.to_python_identifier())


def executor_from_config(executor: ExecutorSettings) -> dg.ExecutorDefinition:
    """The configured executor: in-process (default), multiprocess, or dagster-k8s / dagster-celery
    (installed with the `deploy` extra) with `executor.config`, checked now so a typo fails on load."""
    if executor.type == "in_process":
        return dg.in_process_executor
    if executor.type == "multiprocess":
        definition, settings = dg.multiprocess_executor, {"max_concurrent": executor.max_concurrent, **executor.config}
    else:
        package, module, name = {
            "k8s": ("dagster-k8s", "dagster_k8s", "k8s_job_executor"),
            "celery": ("dagster-celery", "dagster_celery", "celery_executor"),
        }[executor.type]
        try:
            definition, settings = getattr(importlib.import_module(module), name), executor.config
        except ImportError:
            raise ConfigError(
                f"executor.type: {executor.type} needs the {package} package: pip install -e '.[deploy]'"
            ) from None
    configured = definition.configured(settings)
    checked = configured.apply_config_mapping({})
    if not checked.success:
        problems = "; ".join(error.message for error in checked.errors)
        raise ConfigError(f"executor.config for {executor.type}: {problems}")
    return configured


settings = PipelineSettings()


@dg.definitions
def resources() -> dg.Definitions:
    config = active_config()
    return dg.Definitions(
        resources={
            "settings": settings,
            "io_manager": TableIOManager(settings=settings),
            "object_io_manager": ObjectIOManager(settings=settings),
            "llm": LLMNarrator(**config.llm.model_dump()),
        },
        executor=executor_from_config(config.executor),
    )

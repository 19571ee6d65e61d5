"""Resources every stage shares: the validated config, the output folder of the run, the IO managers,
the optional LLM client and the executor.

The config reaches every asset through `PipelineSettings` (a resource holding the config file's
path, visible in the UI's launchpad): the CLI, `dagster dev` and the tests build it the same way.
Every file a step writes goes to the run's staging folder and is recorded in its ledger; steps read
what this run wrote, else the published set (`publication.OutputFolder.locate`). Nothing becomes
visible to readers before the run is published as a whole.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import dagster as dg
import joblib
import pandas as pd
import pyarrow.parquet as pq

from segmentation_pipeline import charts, layout
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.config import ExecutorSettings, PipelineConfig, load_config
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.narrative import NarrativeError, request_narrative
from segmentation_pipeline.orchestration.metadata import table_metadata
from segmentation_pipeline.publication import OutputFolder, RunStaging
from segmentation_pipeline.storage import atomic_path, read_parquet, write_parquet


@lru_cache(maxsize=8)
def _config_at(path: str, modified_ns: int) -> PipelineConfig:
    return load_config(path)


class PipelineSettings(dg.ConfigurableResource):
    """The pipeline's YAML configuration file, validated; read once per process and file version."""

    config_path: str

    @property
    def config(self) -> PipelineConfig:
        path = Path(self.config_path)
        return _config_at(str(path), path.stat().st_mtime_ns if path.exists() else 0)

    def output_folder(self) -> OutputFolder:
        return OutputFolder(self.config.output_path(), self.config.publication.keep_sets)

    def cache_dir(self) -> Path:
        return self.config.output_path() / layout.CACHE

    def staging(self, run_id: str) -> RunStaging:
        return self.output_folder().staging(run_id)

    def locate(self, relative: str, run_id: str | None) -> Path:
        """The stored file a step reads: this run's, else the published one; a clear error when neither."""
        found = self.output_folder().locate(relative, run_id)
        if found is None:
            raise FileNotFoundError(f"{relative} has not been materialized yet: run the assets that write it first")
        return found

    def read_table(self, name: str, run_id: str, columns: Callable[[list[str]], list[str]]) -> pd.DataFrame:
        """A stored table (`locate`) with only the columns `columns(its column names)` picks: a step
        that reads a few columns of a customer table of millions of rows does not load gigabytes."""
        path = self.locate(layout.table(name), run_id)
        return read_parquet(path, columns=columns(pq.read_schema(path).names))


def run_date(context: dg.AssetExecutionContext) -> pd.Timestamp:
    """The run's creation time (UTC, naive): the "today" of every step of the run, so ingest and
    cleaning judge future dates alike however long the run takes."""
    created = context.instance.get_run_record_by_id(context.run.run_id).create_timestamp
    return pd.Timestamp(created).tz_convert("UTC").tz_localize(None)


def record_outputs(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    files: list[str],
    table: pd.DataFrame,
    unit: str = "rows",
    **metadata,
) -> None:
    """Record files the asset wrote into its staging folder (so they are published with the run) and
    attach the standard metadata (rows — or the `unit` a row is —, schema, files) plus extras."""
    asset = context.asset_key.to_user_string()
    settings.staging(context.run.run_id).record(asset, files, len(table))
    context.add_output_metadata({**table_metadata(table, files, unit), **metadata})


def record_charts(
    context: dg.AssetExecutionContext, settings: PipelineSettings, prefix: str, pngs: dict[str, bytes]
) -> dict[str, bytes]:
    """Write every chart at `layout.chart(prefix, name)` into the run's staging, record them, embed every
    image in the metadata (scaled to the UI); return {"prefix/name": png} for the report and checks."""
    staging = settings.staging(context.run.run_id)
    files = [layout.chart(prefix, name) for name in pngs]
    for relative, png in zip(files, pngs.values()):
        charts.save_png(png, staging.path(relative))
    listing = pd.DataFrame(
        [{"chart": name, "width": charts.png_size(png)[0], "height": charts.png_size(png)[1]} for name, png in pngs.items()]
    )
    images = {f"chart/{name}": dg.MetadataValue.md(charts.markdown_image(png)) for name, png in pngs.items()}
    record_outputs(context, settings, files, listing, unit="charts", **images)
    return {f"{prefix}/{name}": png for name, png in pngs.items()}


def record_skipped(context: dg.AssetExecutionContext, settings: PipelineSettings, skipped: SkippedMethod) -> SkippedMethod:
    """A step of a clustering method that did not run: nothing written, the reason in the log and
    the metadata; the marker is passed on to the method's downstream steps."""
    context.log.info(f"{skipped.method} skipped: {skipped.reason}")
    record_outputs(context, settings, [], pd.DataFrame(), skipped=skipped.reason)
    return skipped


class _StagingIOManager(dg.ConfigurableIOManagerFactory):
    """Per-run IO managers: created with the run's id, they write to its staging folder. They hold
    the config path rather than the settings resource: a nested resource makes Dagster rebuild the
    init context through a deprecated path on every step."""

    config_path: str
    io_manager_class: ClassVar[type]

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.IOManager:
        settings = PipelineSettings(config_path=self.config_path)
        return self.io_manager_class(settings, context.run.run_id if context.run else None)


class _TableIO(dg.IOManager):
    """DataFrames as parquet, one file per asset (monthly transaction tables are written by their
    steps themselves: `orchestration.monthly`)."""

    def __init__(self, settings: PipelineSettings, run_id: str | None):
        self.settings, self.run_id = settings, run_id

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        staging = self.settings.staging(self.run_id)
        name = context.asset_key.to_user_string()
        relative = layout.table(name)
        write_parquet(obj, staging.path(relative))
        staging.record(name, [relative], len(obj))
        context.add_output_metadata(table_metadata(obj, [relative]))

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return read_parquet(self.settings.locate(layout.table(context.asset_key.to_user_string()), self.run_id))


class TableIOManager(_StagingIOManager):
    io_manager_class = _TableIO


class _ObjectIO(dg.IOManager):
    """Python results (fitted clusterings, profiles, personas, chart bytes) between steps, as joblib
    files that are part of the set, so checks and partial runs read the published ones."""

    def __init__(self, settings: PipelineSettings, run_id: str | None):
        self.settings, self.run_id = settings, run_id

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        name = context.asset_key.to_user_string()
        relative = layout.stored_object(name)
        staging = self.settings.staging(self.run_id)
        with atomic_path(staging.path(relative)) as temp:
            joblib.dump(obj, temp)
        staging.record(name, [relative], None)

    def load_input(self, context: dg.InputContext) -> object:
        return load_object(self.settings, context.asset_key.to_user_string(), self.run_id)


class ObjectIOManager(_StagingIOManager):
    io_manager_class = _ObjectIO


def load_object(settings: PipelineSettings, asset: str, run_id: str | None) -> object:
    """The stored Python result of `asset`: this run's, else the published one. Its large arrays
    (a clustering's prepared matrix and memberships: hundreds of MB at millions of customers) are
    memory-mapped read-only from the file, so a step reads only the rows it uses."""
    return joblib.load(settings.locate(layout.stored_object(asset), run_id), mmap_mode="r")


@dataclass(frozen=True)
class Narrative:
    text: str | None
    status: str  # "ok", "disabled" or "failed: <reason>"


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

    def narrate(self, prompt: str, log) -> Narrative:
        """The narrative, or none with the reason: "disabled", or "failed: <why>" (logged as a warning,
        so a silent fallback never hides an unreachable endpoint)."""
        if not self.enabled:
            return Narrative(None, "disabled")
        try:
            text = request_narrative(
                prompt,
                self.base_url,
                self.model,
                os.environ.get(self.api_key_env),
                self.timeout_seconds,
                self.temperature,
            )
        except NarrativeError as exc:
            log.warning(f"LLM narrative skipped, using the deterministic text: {exc}")
            return Narrative(None, f"failed: {exc}")
        return Narrative(text, "ok")


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
                f"executor.type: {executor.type} needs the {package} package: pip install '.[deploy]'"
            ) from None
    configured = definition.configured(settings)
    checked = configured.apply_config_mapping({})
    if not checked.success:
        problems = "; ".join(error.message for error in checked.errors)
        raise ConfigError(f"executor.config for {executor.type}: {problems}")
    return configured

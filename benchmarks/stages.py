"""What each benchmark stage runs, what it reads, and the worker process that measures one stage.

Every stage is a plain call into the project's Dagster-free core, the same call the pipeline's asset
makes: a clustering stage (`cluster:<method>`) is `comparison.method_runs`, the method fitted on every
configured feature set and its preferred run chosen, and the stages after it take those runs. The worker (`python -m benchmarks.stages measure <stage> ...`) loads the stage's cached inputs,
resets the process's peak-RSS mark, then times the call alone, so each measurement is one stage on a
fresh interpreter and its peak RSS is not inflated by the stages before it. Modules only some stages
use (clustering, charts, report) are imported inside those stages, so a worker loads what its stage needs.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import measure
from segmentation_pipeline.clustering.base import METHOD_NAMES
from segmentation_pipeline.config import CANONICAL_COLUMNS, TransactionsSettings, load_config
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH
from segmentation_pipeline.retail import aggregates, cleaning, rfm
from segmentation_pipeline.retail.synthetic import TRANSACTION_COLUMNS
from segmentation_pipeline.retail.transactions import MONTH_COLUMN, TransactionLog, iter_raw
from segmentation_pipeline.storage import PartitionedParquetWriter

# The generated log names its columns canonically: map each to itself.
IDENTITY_COLUMNS = {name: (name if name in TRANSACTION_COLUMNS else None) for name in CANONICAL_COLUMNS}
SETTINGS = TransactionsSettings(source="file", path="transactions.parquet", columns=IDENTITY_COLUMNS)
# The run's date that ingest and cleaning judge future timestamps by (a pipeline run uses its own start).
AS_OF = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
REPORT_LINKS = {"Customer features": "tables/customer_features_enriched.parquet"}


# ---------------------------------------------------------------------------------- stage functions


def ingest(transactions_path: Path, folder: Path | None = None) -> Path:
    """Read the log file in chunks into one raw parquet file per month, as `raw_transactions` does
    (rows without a month go to the earliest month, where cleaning rejects them)."""
    folder = folder or Path(tempfile.mkdtemp(prefix="raw_"))
    settings = SETTINGS.model_copy(update={"path": str(transactions_path)})
    log = TransactionLog(settings, (Path(transactions_path),), from_inbox=False)
    with PartitionedParquetWriter(lambda month: folder / f"{month}.parquet") as writer:
        for chunk in iter_raw(log, transactions_path.parent / "parse_cache", AS_OF):
            chunk[MONTH_COLUMN] = chunk[MONTH_COLUMN].fillna(chunk[MONTH_COLUMN].min())
            for month, rows in chunk.groupby(MONTH_COLUMN, sort=False):
                writer.write(month, rows)
    return folder


def clean(raw: Path, folder: Path | None = None) -> Path:
    """Clean month by month into cleaned (and rejected) month files, as the `clean` step does."""
    folder = folder or Path(tempfile.mkdtemp(prefix="cleaned_"))
    rejected = folder / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    for path in month_files(raw):
        result = cleaning.clean_transactions(pd.read_parquet(path), as_of=AS_OF, rules=SETTINGS.cleaning_rules())
        result.cleaned.to_parquet(folder / path.name, index=False)
        result.rejected.to_parquet(rejected / path.name, index=False)
    return folder


def month_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.parquet"))


def _on_engine(function: Callable) -> Callable:
    """A customer table computed by the analytical engine over the cleaned month files, as the
    feature assets compute it."""

    def run(cleaned: Path, *args):
        with aggregates.engine(Path(tempfile.gettempdir()) / "segmentation_engine_spill") as connection:
            return function(aggregates.CleanedLog(connection, month_files(cleaned)), *args)

    return run


compute_rfm = _on_engine(aggregates.rfm_table)
basic_features = _on_engine(aggregates.basic_features)
enriched_features = _on_engine(aggregates.enriched_features)
class_spend = _on_engine(lambda log, rfm_table: aggregates.class_spend(log, rfm_table["customer_id"]))


def write_class_spend(cleaned: Path, rfm_table: pd.DataFrame) -> int:
    """The class spend table written by the engine into a parquet file, as `customer_class_spend` does."""
    with tempfile.TemporaryDirectory() as folder:
        return _on_engine(aggregates.write_class_spend)(cleaned, rfm_table["customer_id"], Path(folder) / "spend.parquet")


def rfm_with_polars(cleaned: Path) -> pd.DataFrame:
    """The engine's RFM query in Polars' streaming engine over the same month files (exact decimal
    sums, scored by the same `rfm.scored_rfm`): the measurement behind choosing DuckDB."""
    import polars as pl

    purchase = ~pl.col("is_return")
    money = pl.col("amount").cast(pl.Decimal(38, 12))
    lines = pl.scan_parquet([str(path) for path in month_files(cleaned)])
    totals = (
        lines.group_by("customer_id")
        .agg(
            pl.col("timestamp").filter(purchase).min().alias("first_purchase"),
            pl.col("timestamp").filter(purchase).max().alias("last_purchase"),
            pl.col("invoice_id").filter(purchase).n_unique().alias("frequency"),
            money.filter(purchase).sum().cast(pl.Float64).alias("monetary"),
            money.sum().cast(pl.Float64).alias("monetary_net"),
        )
        .filter(pl.col("frequency") > 0)
        .sort("customer_id")
        .collect(engine="streaming")
    )
    latest = lines.select(pl.col("timestamp").max()).collect(engine="streaming").item()
    return rfm.scored_rfm(
        totals["customer_id"].cast(pl.String).to_numpy(),
        totals["first_purchase"].to_numpy(),
        totals["last_purchase"].to_numpy(),
        totals["frequency"].to_numpy(),
        totals["monetary"].to_numpy(),
        totals["monetary_net"].to_numpy(),
        pd.Timestamp(latest).normalize() + pd.Timedelta(days=1),
    )


def cleaned_table(cleaned: Path) -> pd.DataFrame:
    """The cleaned month files as one DataFrame, text columns categorical over all months (as one
    table in memory would have them): the input of the in-memory RFM contenders."""
    tables = [pq.read_table(path) for path in month_files(cleaned)]
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def ingest_to_features(transactions_path: Path, customers: pd.DataFrame) -> pd.DataFrame:
    """Log file -> enriched customer features in one process: the chain's wall time and peak memory."""
    cleaned = clean(ingest(transactions_path))
    basic = basic_features(cleaned, compute_rfm(cleaned))
    return enriched_features(cleaned, basic, customers)


def cluster(method: str) -> Callable[[pd.DataFrame], object]:
    """One method on every configured feature set (each with its k selection, final fit and
    bootstraps) and the choice of its preferred run, on the basic features with the clustering
    settings of the shipped config: `comparison.method_runs`, what the pipeline's model asset runs."""

    def run(basic: pd.DataFrame):
        from segmentation_pipeline import comparison

        return comparison.method_runs(method, basic, load_config(DEFAULT_CONFIG_PATH).clustering_settings())

    return run


def cluster_all(basic: pd.DataFrame) -> dict:
    """method -> MethodRuns for every method the pipeline would fit on this table; a method it would
    skip (not enabled, too few customers, no structure found) is left out, as the pipeline does."""
    from segmentation_pipeline.clustering.base import UnsupportedDataError
    from segmentation_pipeline.clustering.support import skip_reason

    config = load_config(DEFAULT_CONFIG_PATH)
    settings, enabled = config.clustering_settings(), config.clustering.enabled_methods()
    fitted = {}
    for method in METHOD_NAMES:
        if skip_reason(method, enabled, len(basic), settings):
            continue
        try:
            fitted[method] = cluster(method)(basic)
        except UnsupportedDataError:
            continue
    return fitted


def compare(fitted: dict, customers: pd.DataFrame) -> dict:
    """Every feature-set run of every method side by side, as the `method_comparison` asset returns it."""
    from segmentation_pipeline import comparison

    truth = customers.set_index(customers["customer_id"].astype(str))["persona"]
    runs = [run for method_runs in fitted.values() for run in method_runs.runs.values()]
    return comparison.comparison_to_dict(comparison.compare_methods(runs, truth=truth))


def write_profiles(fitted: dict, basic: pd.DataFrame, personas_by_method: dict) -> list[Path]:
    """Each method's profile (with its personas' numbers, as the pipeline's profile asset builds it),
    rendered as JSON, YAML and the LLM prompt and written to the paths the output layout gives."""
    from segmentation_pipeline import layout
    from segmentation_pipeline.retail import profiles
    from segmentation_pipeline.storage import atomic_write_text

    written = []
    with tempfile.TemporaryDirectory() as directory:
        for method, method_runs in fitted.items():
            profile = profiles.build_profile(method_runs.result, basic, personas=personas_by_method[method])
            documents = profiles.profile_documents(profile)
            for relative, kind in ((layout.cluster_profile(method, "json"), "json"),
                                   (layout.cluster_profile(method, "yaml"), "yaml"), (layout.llm_prompt(method), "prompt")):
                written.append(atomic_write_text(Path(directory) / relative, documents[kind]))
    return written


def personas_for(fitted: dict, enriched: pd.DataFrame, spend: pd.DataFrame) -> dict[str, dict]:
    """Each method's personas from its preferred run, as the `<method>_personas` assets build them."""
    from segmentation_pipeline.retail import personas

    return {
        method: personas.build_personas(
            runs.result, enriched, aggregates.class_spend_by_cluster(spend, runs.result.customer_ids, runs.result.labels)
        )
        for method, runs in fitted.items()
    }


def draw_charts(
    rfm_table: pd.DataFrame, enriched: pd.DataFrame, fitted: dict, compared: dict, personas_by_method: dict
) -> dict[str, bytes]:
    """Every chart the report embeds: pipeline-level ones, then scatter, dashboard and memberships per
    method (its preferred run), drawn as the chart assets draw them."""
    from segmentation_pipeline import charts as chart_module

    preferred = {method: runs.result for method, runs in fitted.items()}
    charts = {
        "pipeline/rfm_distributions": chart_module.rfm_distributions(rfm_table),
        "pipeline/segment_sizes": chart_module.segment_sizes(rfm_table),
        "pipeline/selection_curves": chart_module.selection_curves(preferred),
        "pipeline/method_comparison": chart_module.method_comparison_chart(compared, compared["recommended_run"]),
    }
    for method, result in preferred.items():
        personas = personas_by_method[method]
        charts[f"{method}/scatter"] = chart_module.cluster_scatter(result, personas)
        charts[f"{method}/dashboard"] = chart_module.cluster_dashboard(result, enriched, personas)
        if result.memberships is not None:
            charts[f"{method}/membership_histogram"] = chart_module.membership_histogram(result)
    return charts


def write_report(compared: dict, personas_by_method: dict, charts: dict[str, bytes]) -> int:
    from segmentation_pipeline import report

    document = report.build_report(compared, personas_by_method, charts, REPORT_LINKS, compared["recommended"])
    with tempfile.TemporaryDirectory() as directory:
        report.write_report(document, Path(directory) / "report.html")
    return len(document)


# ------------------------------------------------------------------- the alternatives for RFM


def rfm_with_lifetimes(cleaned: pd.DataFrame) -> pd.DataFrame:
    """lifetimes' frequency / recency / T / monetary summary of the purchase lines."""
    with warnings.catch_warnings():  # lifetimes 0.11 sets `mode.chained_assignment`, deprecated by pandas 3
        warnings.filterwarnings("ignore", message=".*mode.chained_assignment")
        from lifetimes.utils import summary_data_from_transaction_data

    purchases = cleaned.loc[~cleaned["is_return"].to_numpy(dtype=bool), ["customer_id", "timestamp", "amount"]]
    return summary_data_from_transaction_data(
        purchases,
        "customer_id",
        "timestamp",
        monetary_value_col="amount",
        observation_period_end=rfm.reference_date_for(cleaned),
    )


def rfm_with_pandas(cleaned: pd.DataFrame) -> pd.DataFrame:
    """The textbook pandas RFM: named aggregations per customer, then rank-based quintile scores."""
    reference = rfm.reference_date_for(cleaned)
    purchases = cleaned[~cleaned["is_return"]]
    table = purchases.groupby("customer_id").agg(
        first_purchase=("timestamp", "min"),
        last_purchase=("timestamp", "max"),
        frequency=("invoice_id", "nunique"),
        monetary=("amount", "sum"),
    )
    table["monetary_net"] = cleaned.groupby("customer_id")["amount"].sum().reindex(table.index)
    table["recency_days"] = (reference - table["last_purchase"].dt.normalize()).dt.days
    for score, column, sign in (("r_score", "recency_days", -1), ("f_score", "frequency", 1), ("m_score", "monetary", 1)):
        table[score] = pd.qcut((sign * table[column]).rank(method="first"), 5, labels=False) + 1
    return table


# ---------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Stage:
    run: Callable
    inputs: tuple[str, ...]  # names `Workload.load` knows


STAGES: dict[str, Stage] = {
    "ingest": Stage(ingest, ("transactions",)),
    "clean": Stage(clean, ("raw",)),
    "rfm": Stage(compute_rfm, ("cleaned",)),
    "basic_features": Stage(basic_features, ("cleaned", "rfm")),
    "enriched_features": Stage(enriched_features, ("cleaned", "basic", "customers")),
    "class_spend": Stage(write_class_spend, ("cleaned", "rfm")),
    "ingest_to_features": Stage(ingest_to_features, ("transactions", "customers")),
    **{f"cluster:{method}": Stage(cluster(method), ("basic",)) for method in METHOD_NAMES},
    "comparison": Stage(compare, ("fitted", "customers")),
    "profiles": Stage(write_profiles, ("fitted", "basic", "personas")),
    "personas": Stage(personas_for, ("fitted", "enriched", "class_spend")),
    "charts": Stage(draw_charts, ("rfm", "enriched", "fitted", "comparison", "personas")),
    "report": Stage(write_report, ("comparison", "personas", "charts")),
    "rfm_polars": Stage(rfm_with_polars, ("cleaned",)),
    "rfm_in_memory": Stage(rfm.compute_rfm, ("cleaned_table",)),
    "rfm_lifetimes": Stage(rfm_with_lifetimes, ("cleaned_table",)),
    "rfm_pandas": Stage(rfm_with_pandas, ("cleaned_table",)),
}
PIPELINE_STAGES = [name for name in STAGES if not name.startswith("rfm_")]
FEATURE_STAGES = ["ingest", "clean", "rfm", "rfm_polars", "basic_features", "enriched_features", "class_spend",
                  "ingest_to_features"]
# RFM algorithms side by side on the same cleaned table in memory (the project's in-memory `compute_rfm`;
# the pipeline's engine reads the month files instead: stage `rfm`).
RFM_CONTENDERS = {"lifetimes": "rfm_lifetimes", "pandas_groupby": "rfm_pandas", "project": "rfm_in_memory"}

# Cached inputs: name -> (recipe, the inputs it needs). Tables are stored as parquet, the rest pickled.
# Folder inputs (month files) are written by their recipe into the folder given as its last argument.
INPUT_RECIPES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "raw": (ingest, ("transactions",)),
    "cleaned": (clean, ("raw",)),
    "cleaned_table": (cleaned_table, ("cleaned",)),
    "rfm": (compute_rfm, ("cleaned",)),
    "basic": (basic_features, ("cleaned", "rfm")),
    "enriched": (enriched_features, ("cleaned", "basic", "customers")),
    "class_spend": (class_spend, ("cleaned", "rfm")),
    "fitted": (cluster_all, ("basic",)),  # method -> MethodRuns (every feature set)
    "comparison": (compare, ("fitted", "customers")),
    "personas": (personas_for, ("fitted", "enriched", "class_spend")),
    "charts": (draw_charts, ("rfm", "enriched", "fitted", "comparison", "personas")),
}
FOLDER_INPUTS = frozenset({"raw", "cleaned"})
TABLE_INPUTS = frozenset({"cleaned_table", "rfm", "basic", "enriched", "class_spend"})


def measure_stage(name: str, workload, profile_to: Path | None = None) -> dict:
    """Load the stage's inputs, then time the stage alone; peak RSS is counted from after loading."""
    stage = STAGES[name]
    args = [workload.load(input_name) for input_name in stage.inputs]
    gc.collect()
    loaded_mb = measure.reset_peak_rss()
    profiler = _profiler() if profile_to else None
    if profiler:
        profiler.start()
    started = time.perf_counter()
    output = stage.run(*args)
    seconds = time.perf_counter() - started
    if profiler:
        profiler.stop()
        profile_to.parent.mkdir(parents=True, exist_ok=True)
        profile_to.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    sample = {"seconds": round(seconds, 4), "peak_rss_mb": measure.peak_rss_mb(), "inputs_rss_mb": loaded_mb}
    if isinstance(output, Path):  # month files the stage wrote: measured, then removed
        shutil.rmtree(output, ignore_errors=True)
    if hasattr(output, "runs") and hasattr(output, "preferred"):  # a clustering stage: MethodRuns
        sample["feature_sets"] = list(output.runs)
        sample["preferred_feature_set"] = output.preferred
        sample["feature_sets_not_run"] = dict(output.unavailable)
    del output
    return sample


def _profiler():
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("profiling needs pyinstrument: pip install -e '.[bench]'")
    return Profiler(interval=0.001)


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: `prepare` computes cached inputs, `measure` times one stage."""
    from benchmarks.workload import SizeSpec, Workload

    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages")
    parser.add_argument("action", choices=("prepare", "measure"))
    parser.add_argument("names", nargs="+", help="inputs to prepare, or the one stage to measure")
    parser.add_argument("--spec", required=True, help="SizeSpec as JSON")
    parser.add_argument("--data-dir", required=True, help="the generated log's folder")
    parser.add_argument("--inputs-dir", required=True, help="the cached stage inputs' folder")
    parser.add_argument("--result", help="JSON file the measurement is written to")
    parser.add_argument("--profile", help="write a pyinstrument text profile of the stage here")
    args = parser.parse_args(argv)
    workload = Workload(SizeSpec.from_json(args.spec), Path(args.data_dir), Path(args.inputs_dir))
    if args.action == "prepare":
        for name in args.names:
            workload.load(name)
        return 0
    (name,) = args.names
    sample = measure_stage(name, workload, Path(args.profile) if args.profile else None)
    Path(args.result).write_text(json.dumps(sample))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Persona stage: per method, one data-driven persona per cluster, ranked by value."""

import json
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.clustering import METHODS, ClusteringResult
from segmentation_pipeline.clustering.assignments import assignments_table
from segmentation_pipeline.clustering.support import SkippedMethod
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.resources import (
    PipelineSettings,
    record_outputs,
    record_skipped,
)
from segmentation_pipeline.retail import aggregates, personas
from segmentation_pipeline.retail.features import (
    DEPT_UNITS_PREFIX,
    DEPT_VALUE_PREFIX,
    GROUND_TRUTH_PREFIX,
)
from segmentation_pipeline.storage import atomic_write_text, write_csv


CSV_CHUNK_ROWS = 250_000  # customers converted and written at a time
# Column prefixes the clustered-customers CSV leaves to the tables that own them.
SHARED_ELSEWHERE_PREFIXES = (DEPT_VALUE_PREFIX, DEPT_UNITS_PREFIX, GROUND_TRUTH_PREFIX)


def _personas_asset(method: str) -> dg.AssetsDefinition:
    @dg.asset(
        automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
        name=f"{method}_personas",
        group_name="personas",
        io_manager_key="object_io_manager",
        kinds={"json", "csv"},
        owners=OWNERS,
        ins={"fitted": dg.AssetIn(method)},
        deps=["customer_class_spend", "customer_features_enriched"],
        description=(
            f"One persona per `{method}` cluster (its preferred feature set), named from its data: the RFM "
            "segment only when it is the majority, the department it spends most on, a high-return flag, "
            "the value tier; ranked by value, with behaviour, geography, a description and rule-based "
            "recommended actions. Files: "
            f"`{layout.personas_json(method)}`, `{layout.clustered_customers_csv(method)}`."
        ),
    )
    def _personas(
        context: dg.AssetExecutionContext,
        settings: PipelineSettings,
        fitted,  # MethodRuns, or SkippedMethod when the method did not run
    ):  # a dict, or SkippedMethod
        if isinstance(fitted, SkippedMethod):
            return record_skipped(context, settings, fitted)
        result = fitted.result
        customer_features_enriched = settings.read_table(
            "customer_features_enriched", context.run.run_id, personas.persona_columns
        )
        class_spend_file = settings.locate(layout.table("customer_class_spend"), context.run.run_id)
        class_spend = aggregates.class_spend_by_cluster(class_spend_file, result.customer_ids, result.labels)
        built = personas.build_personas(result, customer_features_enriched, class_spend)
        staging = settings.staging(context.run.run_id)
        files = [layout.personas_json(method), layout.clustered_customers_csv(method)]
        atomic_write_text(staging.path(files[0]), json.dumps(built, indent=2))
        write_csv(_clustered_customers(result, customer_features_enriched, built), staging.path(files[1]))
        table = personas.persona_table(built)
        record_outputs(
            context,
            settings,
            files,
            table,
            unit="personas",
            personas=dg.MetadataValue.md(table[["rank", "persona_name", "value_tier", "size", "percentage"]].to_markdown(index=False)),
        )
        return built

    return _personas


def _clustered_customers(
    result: ClusteringResult, features: pd.DataFrame, built: dict, chunk_rows: int = CSV_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The customer's RFM and behaviour columns + cluster + persona name (+ `noise` for density
    methods: customers in no dense region, assigned to their nearest cluster), for analysts who want
    the rows behind a persona; in the features' order, in chunks of `chunk_rows` customers, so
    millions of rows never become one second copy of the table.

    The per-department columns and the ground truth are left out: they are written once, in
    `customer_features_enriched` and `ground_truth_customers` (keyed by customer_id), and repeated
    in every method's CSV they were three quarters of its cells and most of the step's time."""
    names = {p["cluster_id"]: p["persona_name"] for p in built["personas"]}
    assigned = assignments_table(result)
    assigned = assigned[[c for c in ("customer_id", "cluster", "noise") if c in assigned.columns]]
    assigned["persona_name"] = assigned["cluster"].map(names)
    position = pd.Index(assigned["customer_id"].astype(str)).get_indexer(features["customer_id"].astype(str))
    clustered = np.flatnonzero(position >= 0)
    labels = assigned.drop(columns="customer_id")
    features = features[[c for c in features.columns if not str(c).startswith(SHARED_ELSEWHERE_PREFIXES)]]
    for start in range(0, max(len(clustered), 1), chunk_rows):
        rows = clustered[start : start + chunk_rows]
        yield pd.concat(
            [_rows(features, rows).reset_index(drop=True), _rows(labels, position[rows]).reset_index(drop=True)],
            axis=1,
        )


def _rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """`frame.iloc[positions]`, as a slice when the positions are consecutive (the usual case): taking
    rows one by one from Arrow-backed text columns cost a third of the step at millions of customers."""
    if len(positions) and np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions))):
        return frame.iloc[positions[0] : positions[0] + len(positions)]
    return frame.iloc[positions]


persona_assets = [_personas_asset(method) for method in METHODS]

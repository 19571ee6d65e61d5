"""The Dagster graph from ingest to features, materialized in-process on small synthetic data."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.storage import TableStore, read_manifest
from segmentation_pipeline_tests.conftest import load_definitions, partition_range_tags

FEATURE_STAGE = [
    "raw_transactions",
    "ground_truth_customers",
    "cleaned_transactions",
    "rejected_transactions",
    "rfm",
    "customer_features_basic",
    "customer_features_enriched",
]


def test_ingest_to_features_materializes_with_every_check_passing(small_config, tmp_path):
    definitions = load_definitions()
    job = definitions.resolve_job_def("full_refresh")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in FEATURE_STAGE],
        tags=partition_range_tags(definitions),
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 7
    assert [e.check_name for e in evaluations if not e.passed] == []

    store = TableStore(tmp_path / "outputs")
    months = store.partitions("raw_transactions")
    assert months == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    raw = store.read("raw_transactions", months)
    cleaned = store.read("cleaned_transactions", months)
    rejected = store.read("rejected_transactions", months)
    assert len(raw) == len(cleaned) + len(rejected)
    assert set(rejected["reject_reason"]) >= {"missing_customer", "duplicate"}
    assert cleaned["is_return"].any()

    rfm = store.read("rfm")
    enriched = store.read("customer_features_enriched")
    assert rfm["customer_id"].is_unique and len(rfm) > 500
    assert enriched["customer_id"].tolist() == rfm["customer_id"].tolist()
    assert "true_persona" in enriched.columns

    manifest = read_manifest(tmp_path / "outputs")["assets"]
    assert set(manifest) == set(FEATURE_STAGE)
    assert manifest["raw_transactions"]["row_count"] == len(raw)
    assert manifest["rfm"]["run_id"] == result.run_id


def test_every_asset_has_description_row_count_and_schema(small_config):
    definitions = load_definitions()
    instance = dg.DagsterInstance.ephemeral()
    job = definitions.resolve_job_def("full_refresh")
    job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(name) for name in FEATURE_STAGE],
        tags=partition_range_tags(definitions),
    )
    graph = definitions.resolve_asset_graph()
    for name in FEATURE_STAGE:
        key = dg.AssetKey(name)
        node = graph.get(key)
        assert node.description, name
        assert node.owners, name
        assert node.kinds, name
        event = instance.get_latest_materialization_event(key)
        metadata = event.asset_materialization.metadata
        assert metadata["dagster/row_count"].value >= 0, name
        assert metadata["dagster/column_schema"].value.columns, name
        assert metadata["files"].value, name
    assert isinstance(pd.Timestamp.now(), pd.Timestamp)

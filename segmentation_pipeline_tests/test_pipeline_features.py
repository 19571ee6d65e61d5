"""The Dagster graph from ingest to features, materialized in-process on small synthetic data."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import materialize

FEATURE_STAGE = [
    "raw_transactions",
    "ground_truth_customers",
    "cleaned_transactions",
    "rejected_transactions",
    "rfm",
    "customer_features_basic",
    "customer_features_enriched",
    "customer_class_spend",
]


def _monthly(out, name: str, months: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(out / "tables" / name / f"{month}.parquet") for month in months], ignore_index=True)


def test_ingest_to_features_materializes_with_every_check_passing(small_config, tmp_path):
    result = materialize(small_config, dg.DagsterInstance.ephemeral(), FEATURE_STAGE)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 7
    assert [e.check_name for e in evaluations if not e.passed] == []

    out = tmp_path / "outputs"
    manifest = OutputFolder(out).current().manifest["assets"]
    months = sorted(manifest["raw_transactions"]["partitions"])
    assert months == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    raw, cleaned, rejected = (_monthly(out, name, months) for name in FEATURE_STAGE[:1] + FEATURE_STAGE[2:4])
    assert len(raw) == len(cleaned) + len(rejected)
    assert set(rejected["reject_reason"]) >= {"missing_customer", "duplicate"}
    assert cleaned["is_return"].any()

    rfm = pd.read_parquet(out / "tables" / "rfm.parquet")
    enriched = pd.read_parquet(out / "tables" / "customer_features_enriched.parquet")
    assert rfm["customer_id"].is_unique and len(rfm) > 500
    assert enriched["customer_id"].tolist() == rfm["customer_id"].tolist()
    assert "true_persona" in enriched.columns

    assert set(manifest) == set(FEATURE_STAGE)
    assert manifest["raw_transactions"]["row_count"] == len(raw)
    assert manifest["rfm"]["run_id"] == result.run_id


def test_every_asset_has_description_row_count_and_schema(small_config):
    instance = dg.DagsterInstance.ephemeral()
    materialize(small_config, instance, FEATURE_STAGE)
    graph = build_definitions(small_config).resolve_asset_graph()
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

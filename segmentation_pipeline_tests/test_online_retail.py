"""The real Online Retail sample through the Dagster graph: every row accounted for."""

import dagster as dg

from segmentation_pipeline.config import CONFIG_ENV_VAR
from segmentation_pipeline.storage import TableStore
from segmentation_pipeline_tests.conftest import (
    ONLINE_RETAIL_TRANSACTIONS,
    load_definitions,
    partition_range_tags,
    write_config,
)
from segmentation_pipeline_tests.test_pipeline_features import FEATURE_STAGE


def test_online_retail_sample_rows_returns_and_customers(online_retail, tmp_path, monkeypatch):
    transactions = {**ONLINE_RETAIL_TRANSACTIONS, "path": str(online_retail)}
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write_config(tmp_path, transactions)))
    definitions = load_definitions()
    from segmentation_pipeline.defs.partitions import monthly_partitions

    assert monthly_partitions.get_first_partition_key() == "2010-12-01"
    assert monthly_partitions.get_last_partition_key() == "2011-12-01"
    result = definitions.resolve_job_def("full_refresh").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in FEATURE_STAGE],
        tags=partition_range_tags(definitions),
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    store = TableStore(tmp_path / "outputs")
    months = store.partitions("raw_transactions")
    raw = store.read("raw_transactions", months)
    cleaned = store.read("cleaned_transactions", months)
    rejected = store.read("rejected_transactions", months)
    assert len(raw) == 40_000
    assert len(cleaned) + len(rejected) == 40_000
    assert sorted(cleaned["source_row"].tolist() + rejected["source_row"].tolist()) == list(range(40_000))
    assert int(cleaned["is_return"].sum()) == 648
    assert (cleaned.loc[cleaned["is_return"], "invoice_id"].str.startswith("C")).all()
    assert rejected["reject_reason"].value_counts().to_dict() == {"missing_customer": 10_057, "duplicate": 28, "non_positive_price": 3}
    rfm = store.read("rfm")
    assert len(rfm) == 3_591
    assert rfm["segment"].notna().all()

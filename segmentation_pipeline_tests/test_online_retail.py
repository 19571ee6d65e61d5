"""The real Online Retail sample through the Dagster graph: every row accounted for."""

import dagster as dg
import pandas as pd

from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import (
    ONLINE_RETAIL_TRANSACTIONS,
    materialize,
    register_months,
    write_config,
)
from segmentation_pipeline_tests.test_pipeline_features import FEATURE_STAGE

MONTHS = ["2010-12"] + [f"2011-{month:02d}" for month in range(1, 13)]


# A quarter of the sample's lines have no CustomerID (as in the full workbook).
MISSING_CUSTOMER_SHARE = 10_057 / 40_000


def test_online_retail_sample_stops_at_the_default_rejected_share_and_says_why(online_retail, tmp_path):
    """A quarter of the workbook's lines have no CustomerID (guest checkouts): with the default
    max_rejected_share (5 %) the run fails on the blocking check, which names the reason with examples
    and publishes nothing; the README's Online Retail example raises the limit deliberately."""
    config = write_config(tmp_path, {**ONLINE_RETAIL_TRANSACTIONS, "path": str(online_retail)})
    result = materialize(config, dg.DagsterInstance.ephemeral(), FEATURE_STAGE, raise_on_error=False)
    failed = {e.check_name: e.description for e in result.get_asset_check_evaluations() if not e.passed}
    assert not result.success and list(failed) == ["rejected_share_within_limit"]
    assert "25.2% of 40,000 raw rows were rejected" in failed["rejected_share_within_limit"]
    assert "missing_customer" in failed["rejected_share_within_limit"]
    assert OutputFolder(tmp_path / "outputs").current() is None


def test_online_retail_sample_rows_returns_and_customers(online_retail, tmp_path):
    transactions = {**ONLINE_RETAIL_TRANSACTIONS, "path": str(online_retail), "max_rejected_share": 0.3}
    assert MISSING_CUSTOMER_SHARE < 0.3
    config = write_config(tmp_path, transactions)
    instance = dg.DagsterInstance.ephemeral()
    assert register_months(config, instance) == MONTHS  # the workbook's months, read when a run is prepared
    result = materialize(config, instance, FEATURE_STAGE)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    published = OutputFolder(tmp_path / "outputs").current()
    assets = published.manifest["assets"]

    def monthly(name: str) -> pd.DataFrame:
        assert sorted(assets[name]["partitions"]) == MONTHS
        return pd.concat([pd.read_parquet(published.file(f)) for f in assets[name]["files"]], ignore_index=True)

    raw, cleaned, rejected = monthly("raw_transactions"), monthly("cleaned_transactions"), monthly("rejected_transactions")
    assert len(raw) == 40_000 == assets["raw_transactions"]["row_count"]
    assert len(cleaned) + len(rejected) == 40_000
    assert assets["cleaned_transactions"]["row_count"] + assets["rejected_transactions"]["row_count"] == 40_000
    assert sorted(cleaned["source_row"].tolist() + rejected["source_row"].tolist()) == list(range(40_000))
    assert int(cleaned["is_return"].sum()) == 648
    assert (cleaned.loc[cleaned["is_return"], "invoice_id"].str.startswith("C")).all()
    assert rejected["reject_reason"].value_counts().to_dict() == {"missing_customer": 10_057, "duplicate": 28, "non_positive_price": 3}
    rfm = pd.read_parquet(tmp_path / "outputs" / "tables" / "rfm.parquet")  # the stable path through `current`
    assert len(rfm) == 3_591 == assets["rfm"]["row_count"]
    assert rfm["segment"].notna().all()

"""Same data + seed -> identical segments, profiles and personas (timestamps aside)."""

import pandas as pd
import pytest

from segmentation_pipeline.retail import cleaning, features, personas, profiles, rfm, sources, synthetic
from segmentation_pipeline.clustering import METHODS, ClusteringSettings, run_method

CANONICAL = ["invoice_id", "customer_id", "timestamp", "quantity", "unit_price", "product_id",
             "description", "country", "department", "product_class"]


def _features(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = synthetic.generate(customers=500, months=6, seed=seed)
    raw = sources.map_columns(data.transactions, {c: c for c in CANONICAL}, None, source="synthetic")
    cleaned = cleaning.clean_transactions(raw, as_of="2026-01-01").cleaned
    basic = features.basic_features(cleaned, rfm.compute_rfm(cleaned))
    return basic, features.enriched_features(cleaned, basic, data.customers)


@pytest.mark.parametrize("method", list(METHODS))
def test_same_data_and_seed_give_identical_results(method):
    settings = ClusteringSettings(bootstraps=3)
    runs = []
    for _ in range(2):
        basic, enriched = _features(seed=3)
        result = run_method(method, basic, settings)
        profile = profiles.build_profile(result, basic, timestamp="2026-01-01T00:00:00+00:00")
        profile["metrics"].pop("fit_seconds", None)
        built = personas.build_personas(result, enriched)
        runs.append((result.labels, profile, built))
    (labels_a, profile_a, personas_a), (labels_b, profile_b, personas_b) = runs
    assert (labels_a == labels_b).all()
    assert profile_a == profile_b
    assert personas_a == personas_b


def test_a_different_data_seed_changes_the_data():
    assert not _features(seed=3)[0].equals(_features(seed=4)[0])

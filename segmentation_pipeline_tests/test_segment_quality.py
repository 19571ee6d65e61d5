"""Segment quality on real-sized data: the recommended run finds the known personas, every method
re-fits alike. Measured on the embedded default and on the Online Retail sample (skipped when the
sample is not beside the checkout)."""

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.comparison import compare_methods
from segmentation_pipeline.retail.personas import SEGMENT_LABELS, build_personas, validate_personas
from segmentation_pipeline.retail.profiles import build_profile, llm_prompt, validate_profile
from segmentation_pipeline_tests.conftest import SHARED_DATASET
from segmentation_pipeline_tests.quality_data import embedded_features, runs

TARGET_ARI = 0.80
TARGET_STABILITY = 0.80


def truth() -> pd.Series:
    table = embedded_features()
    return pd.Series(table["true_persona"].to_numpy(), index=table["customer_id"])


def test_recommended_run_finds_the_known_personas_without_looking_at_them():
    results = list(runs("embedded"))
    blind, informed = compare_methods(results), compare_methods(results, truth())
    assert blind.recommended_run == informed.recommended_run
    best = next(r for r in results if r.run_label == blind.recommended_run)
    assert best.feature_set == "behaviour_mix"
    assert adjusted_rand_score(truth().to_numpy(), best.labels) >= TARGET_ARI
    assert informed.table.set_index("run").loc[blind.recommended_run, "ari_vs_truth"] >= TARGET_ARI


def test_purchase_mix_raises_agreement_with_the_personas_for_every_method():
    by_run = {r.run_label: r for r in runs("embedded")}
    for method in METHODS:
        plain = adjusted_rand_score(truth().to_numpy(), by_run[f"{method}/behaviour"].labels)
        mixed = adjusted_rand_score(truth().to_numpy(), by_run[f"{method}/behaviour_mix"].labels)
        assert mixed > plain + 0.1, method


def test_every_method_is_stable_on_the_embedded_data():
    results = runs("embedded")
    assert {r.run_label for r in results} == {f"{m}/{s}" for m in METHODS for s in ("behaviour", "behaviour_mix")}
    for result in results:
        assert result.metrics["stability_ari_mean"] >= TARGET_STABILITY, result.run_label


@pytest.mark.skipif(not SHARED_DATASET.exists(), reason="the shared Online Retail sample is not beside this checkout")
def test_every_method_is_stable_on_the_online_retail_sample():
    results = runs("online_retail")
    assert {r.run_label for r in results} == {f"{m}/behaviour" for m in METHODS}  # no departments
    for result in results:
        assert result.metrics["stability_ari_mean"] >= TARGET_STABILITY, result.run_label
    assert compare_methods(list(results)).recommended in METHODS


def test_persona_names_and_actions_tell_the_truth_for_every_method():
    """Each naming and action rule, checked from the persona's own numbers, on every run."""
    features = embedded_features()
    for result in runs("embedded"):
        built = build_personas(result, features)
        personas = built["personas"]
        assert validate_personas(built, result.n_clusters) == [], result.run_label
        without_tier = [p["persona_name"].rsplit(" [", 1)[0] for p in personas]
        assert len(set(without_tier)) == len(personas), result.run_label
        for p in personas:
            name, mix = p["persona_name"], p["rfm_segment_mix"]
            top_segment, top_share = next(iter(mix.items()))
            adjective = SEGMENT_LABELS[top_segment][0]
            assert (name.split()[0 + p["high_returns"]] == adjective) == (top_share > 0.5), name
            departments = p["behaviour"]["top_departments"]
            assert f"{departments[0]['name']} Shoppers" in name, name
            assert p["name_basis"]["department"] == departments[0]["name"]
            if "over-indexes on" in name:
                assert p["behaviour"]["distinctive_department"]["name"] in name
            assert name.startswith("High-Return") == (
                p["value"]["return_rate"] >= max(0.10, 2 * built["base_return_rate"])
            ), name
            keys = {a["key"] for a in p["recommended_actions"]}
            if p["value_tier"] in ("LOW", "MINIMAL"):
                assert not keys & {"vip_programme", "loyalty_nurture", "priority_service"}, name
            lapsed = sum(mix.get(s, 0.0) for s in ("at_risk", "cant_lose", "hibernating"))
            if lapsed > 0.5 or top_segment in ("at_risk", "cant_lose", "hibernating"):
                assert keys & {"win_back", "low_cost_reactivation"}, name
            if result.method == "hdbscan":
                assert p["absorbed_noise"]["count"] == int(result.noise[result.labels == p["cluster_id"]].sum())


def test_llm_prompt_carries_every_number_the_personas_use_and_labels_log1p_values():
    features = embedded_features()
    result = next(r for r in runs("embedded") if r.run_label == "kmeans/behaviour_mix")
    personas = build_personas(result, features)
    profile = build_profile(result, features, timestamp="2025-01-01T00:00:00+00:00", personas=personas)
    assert validate_profile(profile) == []
    prompt = llm_prompt(profile)
    assert "value_tier_thresholds" in profile and "PREMIUM: 2.0" in prompt
    for persona in personas["personas"]:
        cluster = profile["clusters"][f"cluster_{persona['cluster_id']}"]
        assert cluster["persona"]["value"] == persona["value"]  # revenue share, value index, return rate
        assert cluster["persona"]["name"] in prompt
        assert cluster["top_countries"] == persona["geography"]["top_countries"]
        assert cluster["rfm_segment_mix"]
        assert f"revenue_share: {persona['value']['revenue_share']}" in prompt
    preparation = profile["metadata"]["parameters"]["preparation"]
    assert set(preparation["means"]) == {
        "recency_days", "log1p(frequency)", "log1p(monetary)", "log1p(avg_order_value)", "tenure_months", "return_rate"
    }
    assert "log1p(monetary)" in prompt and "are in log1p space" in prompt

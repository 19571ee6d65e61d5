import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.profiles import (
    CLUSTER_KEYS,
    METADATA_KEYS,
    ROOT_KEYS,
    STATISTICS,
    build_profile,
    json_ready,
    llm_prompt,
    profile_columns,
    rounded_shares,
    validate_profile,
    profile_documents,
)

FEATURES_USED = ["recency_days", "frequency", "monetary", "return_rate"]
TIMESTAMP = "2025-06-30T12:00:00+00:00"


@dataclass
class StandInResult:
    """The attributes of a clustering result that profiles read."""

    method: str
    customer_ids: np.ndarray
    labels: np.ndarray
    n_clusters: int
    features_used: list = field(default_factory=lambda: list(FEATURES_USED))
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    cluster_extras: dict = field(default_factory=dict)
    root_extras: dict = field(default_factory=dict)


def feature_table(n: int, departments: bool = True, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "recency_days": rng.integers(1, 365, n),
            "frequency": rng.integers(1, 30, n),
            "monetary": rng.gamma(2.0, 300.0, n).round(2),
            "monetary_net": rng.gamma(2.0, 280.0, n).round(2),
            "return_rate": rng.uniform(0, 0.3, n),
            # YAML-special names must survive the round trip as strings.
            "segment": rng.choice(["champions", "at_risk", "yes", "null"], n),
        }
    )
    if departments:
        for name in ["Grocery", "No", "2024-01-01", "Toys", "Garden", "Home & Kitchen"]:
            table[f"dept_value:{name}"] = rng.gamma(1.5, 50.0, n).round(2)
            table[f"dept_units:{name}"] = rng.integers(0, 20, n)
    return table


def stand_in(labels, method="kmeans", n_clusters=None, ids=None, **extra) -> StandInResult:
    labels = np.asarray(labels)
    ids = np.array([f"C{i:04d}" for i in range(len(labels))]) if ids is None else ids
    return StandInResult(
        method=method,
        customer_ids=ids,
        labels=labels,
        n_clusters=n_clusters if n_clusters is not None else int(labels.max()) + 1,
        params={"k": n_clusters, "k_source": "auto", "seed": 42, "scaler": np.str_("robust")},
        metrics={"silhouette": np.float64(0.41234567), "davies_bouldin": np.float32(0.9)},
        **extra,
    )


def gmm_like(n=60):
    labels = np.arange(n) % 3
    return stand_in(
        labels,
        method="gmm",
        cluster_extras={
            i: {
                "mixture_weight": np.float64(1 / 3),
                "probability_stats": {"mean": 0.9, "std": 0.1, "min": 0.5, "max": 1.0, "median": 0.95},
                "covariance_info": {"type": "full", "feature_variances": np.array([1.0, 2.0, 3.0, 4.0])},
            }
            for i in range(3)
        },
        root_extras={
            "mixture_weights": np.full(3, 1 / 3),
            "uncertainty_metrics": {"mean_max_probability": np.float64(0.91), "share_below_0_6": 0.05},
        },
    )


def test_profile_schema_keys_and_plain_types():
    profile = build_profile(stand_in(np.arange(40) % 4), feature_table(40), timestamp=TIMESTAMP)

    assert list(profile)[:4] == list(ROOT_KEYS)
    assert list(profile["metadata"]) == list(METADATA_KEYS)
    assert profile["metadata"]["timestamp"] == TIMESTAMP
    assert profile["metadata"]["n_clusters"] == 4 and profile["metadata"]["n_samples"] == 40
    assert profile["metadata"]["parameters"]["scaler"] == "robust"
    assert profile["metrics"]["silhouette"] == 0.4123
    assert type(profile["metrics"]["davies_bouldin"]) is float
    assert profile["features_used"] == FEATURES_USED
    assert list(profile["clusters"]) == [f"cluster_{i}" for i in range(4)]
    for i, cluster in enumerate(profile["clusters"].values()):
        assert set(CLUSTER_KEYS) <= set(cluster)
        assert cluster["cluster_id"] == i and type(cluster["size"]) is int
        assert list(cluster["cluster_center"]) == FEATURES_USED
        for feature in FEATURES_USED:
            stats = cluster["feature_statistics"][feature]
            assert list(stats) == list(STATISTICS)
            assert all(type(value) is float for value in stats.values())
            assert stats["min"] <= stats["q25"] <= stats["median"] <= stats["q75"] <= stats["max"]
            assert cluster["cluster_center"][feature] == stats["mean"]
        assert sum(cluster["rfm_segment_mix"].values()) == pytest.approx(1, abs=1e-9)
        assert set(cluster["rfm_segment_mix"]) <= {"champions", "at_risk", "yes", "null"}
    assert validate_profile(profile) == []
    json.dumps(profile, allow_nan=False)  # plain JSON, no numpy leftovers


def test_cluster_center_is_the_member_mean_in_original_units():
    features = feature_table(30)
    labels = np.arange(30) % 2
    profile = build_profile(stand_in(labels), features, timestamp=TIMESTAMP)
    expected = features.loc[labels == 1, "monetary"].mean()
    assert profile["clusters"]["cluster_1"]["cluster_center"]["monetary"] == pytest.approx(
        expected, abs=1e-4
    )


def test_features_are_aligned_by_customer_id_not_by_row_order():
    features = feature_table(20)
    labels = (np.arange(20) >= 5).astype(int)  # C0000..C0004 form cluster 0
    shuffled = features.sample(frac=1, random_state=3)
    profile = build_profile(stand_in(labels), shuffled, timestamp=TIMESTAMP)
    expected = features["recency_days"].iloc[:5].mean()
    assert profile["clusters"]["cluster_0"]["cluster_center"]["recency_days"] == pytest.approx(
        expected, abs=1e-4
    )


def test_sizes_and_percentages_add_up_for_thirds_and_a_single_member():
    thirds = build_profile(stand_in(np.arange(30) % 3), feature_table(30), timestamp=TIMESTAMP)
    lonely_labels = np.r_[np.zeros(6), np.ones(8), 2].astype(int)
    lonely = build_profile(stand_in(lonely_labels), feature_table(15), timestamp=TIMESTAMP)

    for profile, n in [(thirds, 30), (lonely, 15)]:
        clusters = profile["clusters"].values()
        assert sum(c["size"] for c in clusters) == n
        assert sum(c["percentage"] for c in clusters) == pytest.approx(100, abs=1e-9)
        assert all(c["percentage"] == round(c["percentage"], 2) for c in clusters)
        assert validate_profile(profile) == []
    assert sorted(c["percentage"] for c in thirds["clusters"].values()) == [33.33, 33.33, 33.34]
    single = lonely["clusters"]["cluster_2"]
    assert single["size"] == 1 and single["percentage"] == 6.67
    assert single["feature_statistics"]["monetary"]["std"] is None  # sample std of one value
    assert list(single["rfm_segment_mix"].values()) == [1.0]


def test_rounded_shares_use_largest_remainder():
    assert rounded_shares([1, 1, 1], 2, scale=100) == [33.34, 33.33, 33.33]
    assert rounded_shares([2, 1], 2, scale=100) == [66.67, 33.33]
    assert sum(rounded_shares([1] * 7, 4)) == pytest.approx(1, abs=1e-12)
    assert rounded_shares([0, 0], 2) == [0.0, 0.0] and rounded_shares([], 2) == []


def test_empty_cluster_is_reported_with_null_statistics():
    profile = build_profile(stand_in(np.arange(10) % 2, n_clusters=3), feature_table(10), timestamp=TIMESTAMP)
    empty = profile["clusters"]["cluster_2"]
    assert empty["size"] == 0 and empty["percentage"] == 0.0
    assert empty["cluster_center"]["monetary"] is None and empty["rfm_segment_mix"] == {}
    assert validate_profile(profile) == []


def test_gmm_extras_merged_per_cluster_and_at_root():
    profile = build_profile(gmm_like(), feature_table(60), timestamp=TIMESTAMP)
    cluster = profile["clusters"]["cluster_1"]
    assert cluster["mixture_weight"] == 0.3333
    assert cluster["probability_stats"] == {"mean": 0.9, "std": 0.1, "min": 0.5, "max": 1.0, "median": 0.95}
    assert cluster["covariance_info"] == {"type": "full", "feature_variances": [1.0, 2.0, 3.0, 4.0]}
    assert profile["mixture_weights"] == [0.3333] * 3
    assert profile["uncertainty_metrics"]["mean_max_probability"] == 0.91
    assert list(profile)[4:] == ["mixture_weights", "uncertainty_metrics"]
    assert validate_profile(profile) == []


def test_fuzzy_extras_merged_and_clashing_extras_rejected():
    labels = np.arange(20) % 2
    extras = {i: {"membership_stats": {"mean": 0.8, "std": 0.05, "min": 0.6, "max": 0.99}} for i in range(2)}
    profile = build_profile(
        stand_in(labels, method="fuzzy_cmeans", cluster_extras=extras), feature_table(20), timestamp=TIMESTAMP
    )
    assert profile["clusters"]["cluster_0"]["membership_stats"]["max"] == 0.99
    assert "mixture_weights" not in profile

    clashing = stand_in(labels, cluster_extras={0: {"size": 5}})
    with pytest.raises(ValueError, match="size"):
        build_profile(clashing, feature_table(20), timestamp=TIMESTAMP)


def test_top_departments_only_when_department_columns_exist():
    labels = np.arange(30) % 3
    with_departments = build_profile(stand_in(labels), feature_table(30), timestamp=TIMESTAMP)
    without = build_profile(stand_in(labels), feature_table(30, departments=False), timestamp=TIMESTAMP)

    for cluster in with_departments["clusters"].values():
        top = cluster["top_departments"]
        assert len(top) == 5
        assert [set(entry) for entry in top] == [{"department", "revenue_share"}] * 5
        shares = [entry["revenue_share"] for entry in top]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1
    assert all("top_departments" not in c for c in without["clusters"].values())


def test_top_department_shares_match_member_revenue():
    features = feature_table(12).loc[:, ["customer_id", "segment", *FEATURES_USED]]
    features["dept_value:Grocery"] = 30.0
    features["dept_value:Toys"] = 10.0
    profile = build_profile(stand_in(np.zeros(12, dtype=int)), features, timestamp=TIMESTAMP)
    assert profile["clusters"]["cluster_0"]["top_departments"] == [
        {"department": "Grocery", "revenue_share": 0.75},
        {"department": "Toys", "revenue_share": 0.25},
    ]


def test_profile_documents_json_and_yaml_load_back_equal():
    profile = build_profile(gmm_like(), feature_table(60), timestamp=TIMESTAMP)
    documents = profile_documents(profile)

    assert sorted(documents) == ["json", "prompt", "yaml"]
    from_json = json.loads(documents["json"])
    from_yaml = yaml.safe_load(documents["yaml"])
    assert from_json == profile
    # Same values, same types, same key order: the serialised forms are identical.
    assert json.dumps(from_yaml) == json.dumps(from_json)
    assert from_yaml["clusters"]["cluster_0"]["top_departments"][0]["department"] in {
        "Grocery", "No", "2024-01-01", "Toys", "Garden", "Home & Kitchen"
    }


def test_json_ready_converts_numpy_and_missing_values():
    converted = json_ready(
        {
            1: np.int64(3),
            "nan": np.nan,
            "inf": float("inf"),
            "na": pd.NA,
            "flag": np.bool_(True),
            "small": 0.000123456,
            "big": 123456.789012,
            "negative_zero": -0.0,
            "array": np.array([[1.5, 2.25]]),
            "when": pd.Timestamp("2025-01-02 03:04:05"),
        }
    )
    assert converted == {
        "1": 3,
        "nan": None,
        "inf": None,
        "na": None,
        "flag": True,
        "small": 0.0001235,
        "big": 123456.789,
        "negative_zero": 0.0,
        "array": [[1.5, 2.25]],
        "when": "2025-01-02T03:04:05",
    }
    assert type(converted["1"]) is int and type(converted["flag"]) is bool


def test_build_profile_is_deterministic():
    result, features = gmm_like(), feature_table(60)
    assert build_profile(result, features, TIMESTAMP) == build_profile(result, features, TIMESTAMP)


def test_missing_customers_or_columns_raise_input_errors():
    result = stand_in(np.arange(10) % 2)
    with pytest.raises(InputDataError, match="customer_id"):
        build_profile(result, feature_table(8), timestamp=TIMESTAMP)
    with pytest.raises(InputDataError, match="segment"):
        build_profile(result, feature_table(10).drop(columns="segment"), timestamp=TIMESTAMP)
    duplicated = pd.concat([feature_table(10), feature_table(10).head(1)])
    with pytest.raises(InputDataError, match="duplicate"):
        build_profile(result, duplicated, timestamp=TIMESTAMP)


def test_validate_profile_catches_corruption():
    profile = build_profile(stand_in(np.arange(30) % 3), feature_table(30), timestamp=TIMESTAMP)
    assert validate_profile(profile) == []

    def corrupted(change):
        broken = copy.deepcopy(profile)
        change(broken)
        return validate_profile(broken)

    assert any("size" in p for p in corrupted(lambda p: p["clusters"]["cluster_0"].update(size=11)))
    assert any("non-negative" in p for p in corrupted(lambda p: p["clusters"]["cluster_1"].update(size=-1)))
    assert any("percentages" in p for p in corrupted(lambda p: p["clusters"]["cluster_0"].update(percentage=33.0)))
    assert any("'metrics'" in p for p in corrupted(lambda p: p.pop("metrics")))
    assert any("'n_samples'" in p for p in corrupted(lambda p: p["metadata"].pop("n_samples")))
    assert any("'rfm_segment_mix'" in p for p in corrupted(lambda p: p["clusters"]["cluster_2"].pop("rfm_segment_mix")))
    assert any("2 clusters" in p or "3 clusters" in p for p in corrupted(lambda p: p["clusters"].pop("cluster_2")))
    assert any("JSON" in p for p in corrupted(lambda p: p["metrics"].update(silhouette=float("nan"))))
    assert validate_profile("not a profile") == ["profile is not a mapping"]
    assert validate_profile({"metadata": {}, "clusters": []})  # wrong shapes report, do not crash


def test_prompt_embeds_profile_and_asks_for_names_personas_strategies_risks(tmp_path: Path):
    profile = build_profile(gmm_like(), feature_table(60), timestamp=TIMESTAMP)
    prompt = llm_prompt(profile)

    yaml_block = prompt.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(yaml_block) == profile
    for ask in ["segment_name", "persona", "marketing_strategies", "risks", "Recency", "JSON schema"]:
        assert ask in prompt
    schema = json.loads(prompt.split("```json\n", 1)[1].split("```", 1)[0])
    item = schema["properties"]["clusters"]["items"]
    assert item["properties"]["cluster_id"]["enum"] == [0, 1, 2]
    assert schema["properties"]["clusters"]["minItems"] == 3
    assert profile_documents(profile)["prompt"] == prompt


def test_profiles_read_ids_segment_the_features_used_and_department_spend_in_table_order():
    available = ["customer_id", "first_purchase", "recency_days", "segment", "dept_value:Toys", "dept_units:Toys", "units"]
    assert profile_columns(available, ["units", "recency_days"]) == ["customer_id", "recency_days", "segment", "dept_value:Toys", "units"]

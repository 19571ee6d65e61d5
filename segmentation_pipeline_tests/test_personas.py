import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.personas import (
    ACTION_RULES,
    VALUE_TIER_THRESHOLDS,
    build_personas,
    concentration_label,
    persona_columns,
    persona_table,
    recommend_actions,
    tier_for,
    validate_personas,
)


def block(cluster, n, *, segment, monetary, frequency=5, recency=30, aov=50.0, return_rate=0.02,
          tenure=12.0, departments=None, country=None, true_persona=None):
    """n identical customers of one cluster (lists allowed for country / true_persona)."""
    rows = pd.DataFrame({
        "customer_id": [f"c{cluster}-{i}" for i in range(n)],
        "recency_days": recency, "frequency": frequency, "monetary": float(monetary),
        "monetary_net": float(monetary) * (1 - return_rate), "avg_order_value": aov,
        "orders_per_month": frequency / tenure, "tenure_months": tenure,
        "return_rate": return_rate, "returns_count": 0,
        "r_score": 3, "f_score": 3, "m_score": 3, "rfm_score": "333", "segment": segment,
        "cluster": cluster,
    })
    for department, value in (departments or {}).items():
        rows[f"dept_value:{department}"] = float(value)
    if country is not None:
        rows["country"] = country
    if true_persona is not None:
        rows["true_persona"] = true_persona
    return rows


def assemble(*blocks, method="kmeans"):
    """Features table (without labels) and a stand-in clustering result."""
    frame = pd.concat(blocks, ignore_index=True)
    dept_columns = [c for c in frame.columns if c.startswith("dept_value:")]
    frame[dept_columns] = frame[dept_columns].fillna(0.0)
    result = SimpleNamespace(
        method=method,
        customer_ids=frame["customer_id"].to_numpy(),
        labels=frame["cluster"].to_numpy(),
        memberships=None,
        n_clusters=int(frame["cluster"].nunique()),
    )
    return frame.drop(columns="cluster"), result


@pytest.fixture(scope="module")
def base():
    features, result = assemble(
        block(0, 10, segment="champions", monetary=2000, frequency=20,
              departments={"Home & Kids": 1500, "Garden": 500}, country="United Kingdom",
              true_persona="Family Spender"),
        block(1, 20, segment="at_risk", monetary=300, frequency=8, recency=200,
              departments={"Garden": 250, "Home & Kids": 50}, country="Germany",
              true_persona="Lapsed Gardener"),
        block(2, 30, segment="hibernating", monetary=160, frequency=2, recency=300, return_rate=0.25,
              departments={"Sports": 80, "Home & Kids": 20}, country="United Kingdom",
              true_persona="Bargain Returner"),
        block(3, 40, segment="new_customers", monetary=130, frequency=1, recency=10, return_rate=0.0,
              departments={"Fashion": 60}, country="France",
              true_persona=["Newcomer"] * 30 + ["Bargain Returner"] * 10),
    )
    return features, result, build_personas(result, features)


def by_cluster(personas_dict):
    return {p["cluster_id"]: p for p in personas_dict["personas"]}


def test_one_valid_persona_per_cluster(base):
    features, result, out = base
    assert len(out["personas"]) == result.n_clusters
    assert validate_personas(out, result.n_clusters) == []
    assert out["method"] == "kmeans"
    assert out["value_tier_thresholds"] == VALUE_TIER_THRESHOLDS
    assert sum(p["size"] for p in out["personas"]) == len(features)
    json.dumps(out)  # JSON-ready


def test_ranked_by_revenue_share_not_value_index(base):
    _, _, out = base
    order = [p["cluster_id"] for p in sorted(out["personas"], key=lambda p: p["rank"])]
    # revenue 20000, 6000, 5200 (cluster 3), 4800 (cluster 2); cluster 2 has the higher value index
    assert order == [0, 1, 3, 2]
    personas = by_cluster(out)
    assert personas[2]["value"]["value_index"] > personas[3]["value"]["value_index"]
    assert personas[0]["value"]["revenue_share"] == pytest.approx(20000 / 36000, abs=1e-4)


def test_tiers_follow_value_index_thresholds(base):
    _, _, out = base
    personas = by_cluster(out)
    assert {c: p["value_tier"] for c, p in personas.items()} == {
        0: "PREMIUM", 1: "MEDIUM", 2: "LOW", 3: "MINIMAL"
    }
    for p in out["personas"]:
        assert p["value_tier"] == tier_for(p["value"]["value_index"])
        assert f"[{p['value_tier']} VALUE]" in p["persona_name"]


@pytest.mark.parametrize("value, tier", [
    (2.0, "PREMIUM"), (1.9999, "HIGH"), (1.3, "HIGH"), (1.2999, "MEDIUM"), (0.8, "MEDIUM"),
    (0.7999, "LOW"), (0.4, "LOW"), (0.3999, "MINIMAL"), (0.0, "MINIMAL"),
])
def test_tier_boundaries(value, tier):
    assert tier_for(value) == tier


def test_names_come_from_segment_department_and_tier(base):
    _, _, out = base
    names = {c: p["persona_name"] for c, p in by_cluster(out).items()}
    assert names[0] == "Champion Home & Kids Shoppers [PREMIUM VALUE]"
    assert names[1] == "At-Risk Garden Shoppers [MEDIUM VALUE]"
    assert names[2] == "High-Return Hibernating Sports Shoppers [LOW VALUE]"  # returns 25 %, base 4.8 %
    assert names[3] == "New Fashion Shoppers [MINIMAL VALUE]"


def test_distinctive_department_is_highest_lift_with_a_meaningful_share():
    # Cluster 0 buys mostly Home like everybody, but over-indexes on Toys; "Rare" has an even
    # higher lift but only 1 % of the cluster's spend, too small to describe it.
    features, result = assemble(
        block(0, 10, segment="loyal_customers", monetary=100,
              departments={"Home": 79, "Toys": 20, "Rare": 1}),
        block(1, 30, segment="loyal_customers", monetary=100, frequency=1,
              departments={"Home": 95, "Toys": 5}),
    )
    personas = by_cluster(build_personas(result, features))
    assert personas[0]["persona_name"] == "Loyal Home Shoppers (over-indexes on Toys) [MEDIUM VALUE]"
    assert personas[0]["behaviour"]["top_departments"][0]["name"] == "Home"
    assert personas[0]["behaviour"]["distinctive_department"]["name"] == "Toys"
    basis = personas[0]["name_basis"]
    assert basis["department"] == "Home" and basis["department_reason"] == "largest share of the cluster's spend (79%)"
    assert basis["qualifier"] == "over-indexes on Toys"
    assert basis["qualifier_reason"] == "Toys takes 20% of its spend, 2.29x the share among all customers"
    assert personas[1]["persona_name"].startswith("Loyal Home Shoppers (")


def test_clashing_names_get_the_next_distinctive_trait():
    features, result = assemble(
        block(0, 50, segment="loyal_customers", monetary=500, frequency=20,
              departments={"Home": 500}),
        block(1, 50, segment="loyal_customers", monetary=500, frequency=4,
              departments={"Home": 500}),
    )
    out = build_personas(result, features)
    names = by_cluster(out)
    assert names[0]["value_tier"] == names[1]["value_tier"] == "MEDIUM"
    assert names[0]["persona_name"] == "Loyal Home Shoppers (Frequent) [MEDIUM VALUE]"
    assert names[1]["persona_name"] == "Loyal Home Shoppers (Occasional) [MEDIUM VALUE]"
    assert validate_personas(out, 2) == []


def test_indistinguishable_clusters_still_get_unique_names():
    features, result = assemble(
        block(0, 5, segment="promising", monetary=80, departments={"Home": 80}),
        block(1, 5, segment="promising", monetary=80, departments={"Home": 80}),
    )
    out = build_personas(result, features)
    names = [p["persona_name"] for p in out["personas"]]
    assert len(set(names)) == 2
    assert all(name.startswith("Promising Home Shoppers") for name in names)
    assert not any("#" in name for name in names)


def test_actions_follow_the_rule_table(base):
    _, _, out = base
    keys = {c: [a["key"] for a in p["recommended_actions"]] for c, p in by_cluster(out).items()}
    assert {"vip_programme", "priority_service", "cross_sell"} <= set(keys[0])
    assert "win_back" not in keys[0]
    assert "win_back" in keys[1]
    assert {"low_cost_reactivation", "returns_review"} <= set(keys[2])
    assert {"onboarding", "low_cost_service"} <= set(keys[3])
    rule_keys = {rule.key for rule in ACTION_RULES}
    for p in out["personas"]:
        for action in p["recommended_actions"]:
            assert action["key"] in rule_keys
            assert action["reason"]
    win_back = next(a for a in by_cluster(out)[1]["recommended_actions"] if a["key"] == "win_back")
    assert win_back["value"] == 1.0 and "100.0%" in win_back["reason"]
    cross_sell = next(a for a in by_cluster(out)[0]["recommended_actions"] if a["key"] == "cross_sell")
    assert "Home & Kids" in cross_sell["action"]


def test_action_rule_thresholds_are_inclusive_and_default_applies():
    assert [a["key"] for a in recommend_actions({"lapsed_share": 0.25}, tier="HIGH")] == ["win_back"]
    assert [a["key"] for a in recommend_actions({"lapsed_share": 0.25}, tier="LOW")] == ["low_cost_reactivation"]
    assert [a["key"] for a in recommend_actions({"lapsed_share": 0.2499}, tier="HIGH")] == ["standard_programme"]
    assert [a["key"] for a in recommend_actions({"value_index": 0.3999})] == ["low_cost_service"]
    assert [a["key"] for a in recommend_actions({"value_index": 0.4})] == ["standard_programme"]


def test_value_rewarding_actions_only_for_valuable_tiers():
    loyal = {"champions_share": 0.5, "loyal_share": 0.5, "engaged_share": 1.0}
    assert [a["key"] for a in recommend_actions(loyal, tier="MEDIUM")] == ["vip_programme", "loyalty_nurture"]
    low = recommend_actions(loyal, tier="LOW")
    assert [a["key"] for a in low] == ["basket_growth"] and "in a LOW value cluster" in low[0]["reason"]


def test_rfm_word_only_for_a_majority_segment_and_high_returns_in_the_name():
    features, result = assemble(
        block(0, 10, segment="loyal_customers", monetary=500, departments={"Home": 500}),
        block(0, 10, segment="at_risk", monetary=500, departments={"Home": 500}).assign(
            customer_id=[f"r{i}" for i in range(10)]),
        block(1, 10, segment="loyal_customers", monetary=500, return_rate=0.4, departments={"Toys": 500}),
    )
    personas = by_cluster(build_personas(result, features))
    assert personas[0]["persona_name"] == "Mixed-Status Home Shoppers [MEDIUM VALUE]"
    assert personas[0]["name_basis"]["descriptor_reason"] == "no RFM segment is a majority (largest: at-risk customers, 50%)"
    assert personas[0]["recommended_actions"][0]["key"] == "win_back"  # half the cluster is at risk
    assert personas[1]["persona_name"] == "High-Return Loyal Toys Shoppers [MEDIUM VALUE]"
    assert personas[1]["high_returns"] and "well above the base rate" in personas[1]["description"]


def test_hdbscan_noise_is_named_on_the_persona_that_absorbed_it(base):
    features, result, _ = base
    noise = np.zeros(len(features), dtype=bool)
    noise[:3] = True  # three customers of cluster 0
    personas = by_cluster(build_personas(SimpleNamespace(**vars(result), noise=noise), features))
    assert personas[0]["absorbed_noise"] == {"count": 3, "share": 0.3}
    assert "3 of them (30%) lie in no dense region (HDBSCAN noise)" in personas[0]["description"]
    assert personas[1]["absorbed_noise"] == {"count": 0, "share": 0.0}
    assert "absorbed_noise" not in by_cluster(build_personas(result, features))[0]


def test_truth_crosstab_and_best_match(base):
    features, _, out = base
    crosstab = out["truth_crosstab"]
    assert sum(sum(row.values()) for row in crosstab.values()) == len(features)
    assert crosstab["Bargain Returner"] == {"0": 0, "1": 0, "2": 30, "3": 10}
    personas = by_cluster(out)
    assert personas[3]["best_matching_true_persona"] == "Newcomer"
    assert personas[3]["best_matching_true_persona_share"] == 0.75
    assert out["best_match"]["purity"] == pytest.approx(90 / 100)
    assert out["best_match"]["true_personas_matched"] == 4


@pytest.mark.parametrize("share, label", [
    (0.7001, "High"), (0.70, "Medium"), (0.40, "Medium"), (0.3999, "Low"),
])
def test_concentration_boundaries(share, label):
    assert concentration_label(share) == label


def test_geography_concentration_in_personas():
    features, result = assemble(
        block(0, 10, segment="champions", monetary=100, country=["UK"] * 8 + ["DE"] * 2),
        block(1, 10, segment="champions", monetary=100, country=["UK"] * 7 + ["DE"] * 3),
        block(2, 10, segment="champions", monetary=100, country=["UK"] * 4 + ["DE"] * 3 + ["FR"] * 3),
        block(3, 10, segment="champions", monetary=100,
              country=["UK"] * 3 + ["DE"] * 3 + ["FR"] * 2 + ["NL"] * 2),
    )
    personas = by_cluster(build_personas(result, features))
    assert [personas[c]["geography"]["concentration"] for c in range(4)] == [
        "High", "Medium", "Medium", "Low"
    ]
    assert personas[0]["geography"]["top_countries"][0] == {"name": "UK", "share": 0.8, "lift": 1.45}


def test_without_departments_or_countries():
    features, result = assemble(
        block(0, 10, segment="champions", monetary=900),
        block(1, 30, segment="hibernating", monetary=50),
    )
    out = build_personas(result, features)
    assert validate_personas(out, 2) == []
    personas = by_cluster(out)
    assert personas[0]["persona_name"] == "Champion Customers [PREMIUM VALUE]"
    assert personas[0]["behaviour"]["top_departments"] == []
    assert "geography" not in personas[0]
    assert "truth_crosstab" not in out


def test_country_names_the_persona_without_departments():
    features, result = assemble(
        block(0, 10, segment="at_risk", monetary=100, country="Germany"),
        block(1, 10, segment="at_risk", monetary=100, country="France"),
    )
    personas = by_cluster(build_personas(result, features))
    assert personas[0]["persona_name"] == "At-Risk Shoppers from Germany [MEDIUM VALUE]"
    assert personas[1]["persona_name"] == "At-Risk Shoppers from France [MEDIUM VALUE]"


def test_row_order_of_features_does_not_matter(base):
    features, result, out = base
    shuffled = features.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert build_personas(result, shuffled) == out


def test_missing_clustered_customer_is_an_input_error(base):
    features, result, _ = base
    with pytest.raises(InputDataError, match="customer_id"):
        build_personas(result, features.iloc[1:])


def test_persona_table_one_row_per_persona_in_rank_order(base):
    _, _, out = base
    table = persona_table(out)
    assert len(table) == 4
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["persona_name"].is_unique
    assert {"value_tier", "revenue_share", "value_index", "top_department", "top_country",
            "actions", "best_matching_true_persona"} <= set(table.columns)


def test_validate_reports_problems(base):
    _, _, out = base
    broken = json.loads(json.dumps(out))
    broken["personas"][1]["persona_name"] = broken["personas"][0]["persona_name"]
    broken["personas"][2]["value_tier"] = "PREMIUM"
    problems = validate_personas(broken, 5)
    assert any("4 personas for 5 clusters" in p for p in problems)
    assert any("duplicate persona names" in p for p in problems)
    assert any("tier PREMIUM" in p for p in problems)


def test_description_is_written_from_the_numbers(base):
    _, _, out = base
    champion = by_cluster(out)[0]
    assert "10 customers (10.0% of the base)" in champion["description"]
    assert "55.6% of gross revenue" in champion["description"]
    assert "Home & Kids" in champion["description"]
    assert len({p["description"] for p in out["personas"]}) == 4
    assert np.isclose(sum(p["percentage"] for p in out["personas"]), 100.0)


def test_personas_read_every_column_but_department_units_and_the_truth_details():
    available = ["customer_id", "monetary", "segment", "dept_value:Toys", "dept_units:Toys", "true_persona", "true_email"]
    assert persona_columns(available) == ["customer_id", "monetary", "segment", "dept_value:Toys", "true_persona"]

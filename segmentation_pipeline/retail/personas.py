"""One persona per cluster, named and described from the cluster's own numbers.

Nothing here knows persona names in advance: a name is assembled from the cluster's own numbers, so
the same code names clusters of any data set, and every word of it must be true of the cluster:

- an RFM word ("Loyal", "At-Risk") only when that segment is the majority (> MAJORITY) of the
  cluster, otherwise the neutral MIXED_DESCRIPTOR;
- the department is the one the cluster spends most on; a department it merely over-indexes on
  appears only as the qualifier "(over-indexes on ...)", and the persona's `name_basis` says which;
- "High-Return" leads the name when the cluster returns at least HIGH_RETURN_FACTOR times the
  base rate (and at least HIGH_RETURN_MIN of what it buys);
- names are unique within a method without counting the tier (clashes get a qualifier).

Recommended actions come from the documented rule table `ACTION_RULES`, some restricted to value
tiers (no VIP programme for LOW / MINIMAL clusters), and every action carries the number that
triggered it, so a reader can audit why a persona got it. For HDBSCAN the customers it marked as
noise and assigned to their nearest cluster are counted on the persona that absorbed them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation_pipeline.clustering.assignments import table_positions
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.retail.features import (
    DEPT_UNITS_PREFIX,
    DEPT_VALUE_PREFIX,
    GROUND_TRUTH_PREFIX,
)

FEATURES_TABLE = "customer_features_enriched"

# Value index = cluster revenue share / cluster customer share. A tier applies from its minimum up.
VALUE_TIER_THRESHOLDS: dict[str, float] = {
    "PREMIUM": 2.0,
    "HIGH": 1.3,
    "MEDIUM": 0.8,
    "LOW": 0.4,
    "MINIMAL": 0.0,
}
VALUE_TIERS: tuple[str, ...] = tuple(VALUE_TIER_THRESHOLDS)

# RFM segment -> (adjective used in persona names, phrase used in descriptions), in RFM order.
SEGMENT_LABELS: dict[str, tuple[str, str]] = {
    "champions": ("Champion", "champions"),
    "loyal_customers": ("Loyal", "loyal customers"),
    "potential_loyalists": ("Potential-Loyalist", "potential loyalists"),
    "new_customers": ("New", "new customers"),
    "promising": ("Promising", "promising customers"),
    "need_attention": ("Needs-Attention", "customers needing attention"),
    "about_to_sleep": ("About-to-Sleep", "customers about to sleep"),
    "at_risk": ("At-Risk", "at-risk customers"),
    "cant_lose": ("Can't-Lose", "customers the business can't lose"),
    "hibernating": ("Hibernating", "hibernating customers"),
}

# A department/country must hold at least this share of the cluster to name it: a 0.5 % niche
# with a large lift would be distinctive but would not describe the cluster.
MIN_TRAIT_SHARE = 0.05
# An RFM segment names the cluster only when more than this share of its customers are in it.
MAJORITY = 0.5
MIXED_DESCRIPTOR = "Mixed-Status"
# "High-Return" when the cluster's return rate is >= both of these (factor x the base rate, and a floor).
HIGH_RETURN_FACTOR = 2.0
HIGH_RETURN_MIN = 0.10
HIGH_RETURN_WORD = "High-Return"
# A country names the cluster (without departments) only when most of its customers live there.
COUNTRY_MAJORITY = 0.5
# Behavioural adjectives used to tell apart clusters that would otherwise get the same name:
# (feature, adjective when the cluster mean is above the overall mean, adjective when below).
BEHAVIOUR_TRAITS: tuple[tuple[str, str, str], ...] = (
    ("frequency", "Frequent", "Occasional"),
    ("avg_order_value", "Big-Basket", "Small-Basket"),
    ("recency_days", "Lapsed", "Recent"),
    ("return_rate", "High-Return", "Low-Return"),
    ("tenure_months", "Long-Standing", "Newer"),
)
# A behavioural adjective is only used when the cluster mean differs from the overall mean by >= 10 %.
MIN_BEHAVIOUR_RATIO = 1.1

# Geography concentration from the top country's share of the cluster's customers.
GEO_HIGH_ABOVE = 0.70  # "High" when strictly above
GEO_MEDIUM_FROM = 0.40  # "Medium" from here up to and including GEO_HIGH_ABOVE, else "Low"

TOP_N = 3  # departments / classes / countries / segments listed per persona

REQUIRED_COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "return_rate",
    "segment",
)
# Optional columns used when present (besides dept_value:*).
TRUE_PERSONA = f"{GROUND_TRUTH_PREFIX}persona"
OPTIONAL_COLUMNS = ("tenure_months", "r_score", "f_score", "m_score", "country", TRUE_PERSONA)
ALIGNED_COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)


def persona_columns(available: Sequence[str]) -> list[str]:
    """The columns of the enriched customer table that personas, their charts and profiles and the
    clustered-customers CSV read, in table order: all but the per-department units and the ground
    truth's details (of the truth only the true persona is compared with). At millions of customers
    the rest is gigabytes, mostly text, loaded for nothing."""
    return [
        column for column in available
        if column == TRUE_PERSONA or not column.startswith((DEPT_UNITS_PREFIX, GROUND_TRUTH_PREFIX))
    ]


VALUED_TIERS = ("PREMIUM", "HIGH", "MEDIUM")
LOW_TIERS = ("LOW", "MINIMAL")


@dataclass(frozen=True)
class ActionRule:
    """Recommend `action` when the cluster's `metric` compares (`operator`) to `threshold` and,
    when `tiers` is set, the cluster's value tier is one of them."""

    key: str
    metric: str
    operator: str  # ">=" or "<"
    threshold: float
    action: str  # may use {top_department}
    tiers: tuple[str, ...] | None = None


# Metrics the rules read, with a label and whether they print as a percentage.
RULE_METRICS: dict[str, tuple[str, bool]] = {
    "lapsed_share": ("share of at_risk + cant_lose + hibernating customers", True),
    "at_risk_share": ("share of at_risk + cant_lose customers", True),
    "engaged_share": ("share of champions + loyal_customers + potential_loyalists", True),
    "champions_share": ("share of champions", True),
    "loyal_share": ("share of loyal_customers + potential_loyalists", True),
    "new_share": ("share of new_customers + promising", True),
    "fading_share": ("share of need_attention + about_to_sleep", True),
    "return_rate": ("return rate (returned / purchased value)", True),
    "value_index": ("value index (revenue share / customer share)", False),
    "top_department_share": ("top department's share of department revenue", True),
}
# Segments summed into each *_share metric above.
RULE_SEGMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "lapsed_share": ("at_risk", "cant_lose", "hibernating"),
    "at_risk_share": ("at_risk", "cant_lose"),
    "engaged_share": ("champions", "loyal_customers", "potential_loyalists"),
    "champions_share": ("champions",),
    "loyal_share": ("loyal_customers", "potential_loyalists"),
    "new_share": ("new_customers", "promising"),
    "fading_share": ("need_attention", "about_to_sleep"),
}

LAPSED_SEGMENTS = RULE_SEGMENT_GROUPS["lapsed_share"]
ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule("win_back", "lapsed_share", ">=", 0.25,
               "Win-back campaign: personal offer and a reminder of past favourites", VALUED_TIERS),
    ActionRule("low_cost_reactivation", "lapsed_share", ">=", 0.25,
               "Low-cost win-back (email only): a reminder and a modest comeback offer; keep out of "
               "paid media spend", LOW_TIERS),
    ActionRule("vip_programme", "champions_share", ">=", 0.30,
               "Loyalty / VIP programme: early access, exclusive perks, referral invitations", VALUED_TIERS),
    ActionRule("loyalty_nurture", "loyal_share", ">=", 0.30,
               "Nurture towards VIP status: personalised recommendations and membership offers",
               VALUED_TIERS),
    ActionRule("basket_growth", "engaged_share", ">=", 0.30,
               "Grow their small baskets: bundles and free-delivery thresholds in automated channels",
               LOW_TIERS),
    ActionRule("onboarding", "new_share", ">=", 0.30,
               "Onboarding journey: welcome series and a second-purchase incentive"),
    ActionRule("pre_lapse_offer", "fading_share", ">=", 0.30,
               "Time-limited offer to re-engage before these customers lapse"),
    ActionRule("returns_review", "return_rate", ">=", 0.10,
               "Returns review: sizing and quality checks, clearer product information"),
    ActionRule("priority_service", "value_index", ">=", VALUE_TIER_THRESHOLDS["HIGH"],
               "Retention and priority service: dedicated support and proactive account care"),
    ActionRule("low_cost_service", "value_index", "<", VALUE_TIER_THRESHOLDS["LOW"],
               "Serve through low-cost automated channels and limit discounting"),
    ActionRule("cross_sell", "top_department_share", ">=", 0.50,
               "Cross-sell beyond {top_department}: bundles with complementary departments"),
)
# Actions that reward value: never for a LOW / MINIMAL cluster (checked by the persona tests).
VIP_ACTIONS = ("vip_programme", "loyalty_nurture", "priority_service")
WIN_BACK_ACTIONS = ("win_back", "low_cost_reactivation")
DEFAULT_ACTION = {
    "key": "standard_programme",
    "action": "Keep in the standard communication programme and monitor segment movement",
    "reason": "no rule threshold was reached",
}


def tier_for(value_index: float, thresholds: dict[str, float] = VALUE_TIER_THRESHOLDS) -> str:
    """Value tier of a value index: the first tier (highest first) whose minimum it reaches."""
    for tier, minimum in sorted(thresholds.items(), key=lambda item: -item[1]):
        if value_index >= minimum:
            return tier
    return min(thresholds.items(), key=lambda item: item[1])[0]


def build_personas(result, features: pd.DataFrame, class_spend: pd.DataFrame | None = None) -> dict:
    """JSON-ready personas of one clustering result, ranked by revenue share (rank 1 = most valuable).

    `class_spend` is purchase revenue per cluster (rows) and product class (columns), e.g.
    `aggregates.class_spend_by_cluster`; without it the personas list no top classes.
    """
    frame = aligned_features(result, features)
    clusters = _cluster_table(frame, getattr(result, "noise", None))
    departments = _share_table(frame, DEPT_VALUE_PREFIX)
    classes = None if class_spend is None or class_spend.empty else _shares_and_lift(class_spend)
    countries = _country_table(frame)
    behaviour = _behaviour_candidates(frame)
    truth = _truth_crosstab(frame)

    base_return_rate = float(clusters["returned"].sum() / clusters["revenue"].sum()) if clusters["revenue"].sum() > 0 else 0.0
    personas = []
    for cluster_id, row in clusters.iterrows():
        persona = _persona(int(cluster_id), row, len(frame), departments, classes, countries, base_return_rate)
        if truth is not None:
            match = truth[cluster_id]
            persona["best_matching_true_persona"] = str(match.idxmax())
            persona["best_matching_true_persona_share"] = _num(match.max() / match.sum())
        personas.append(persona)

    personas.sort(key=lambda p: (-p["value"]["revenue_share"], -p["size"], p["cluster_id"]))
    for rank, persona in enumerate(personas, start=1):
        persona["rank"] = rank
    _assign_names(personas, departments, countries, behaviour)
    for persona in personas:
        persona["description"] = _describe(persona)

    output = {
        "method": str(result.method),
        "feature_set": str(getattr(result, "feature_set", "behaviour")),
        "value_tier_thresholds": dict(VALUE_TIER_THRESHOLDS),
        "base_return_rate": _num(base_return_rate),
        "personas": [_ordered(p) for p in personas],
    }
    if truth is not None:
        output["truth_crosstab"] = {
            str(true_name): {str(c): int(n) for c, n in counts.items()}
            for true_name, counts in truth.iterrows()
        }
        output["best_match"] = _best_match_summary(truth)
    return output


def persona_table(personas_dict: dict) -> pd.DataFrame:
    """One row per persona, ranked, flat columns for a parquet table or Dagster metadata."""
    rows = []
    for p in sorted(personas_dict["personas"], key=lambda p: p["rank"]):
        departments = p["behaviour"]["top_departments"]
        countries = p.get("geography", {}).get("top_countries", [])
        row = {
            "rank": p["rank"],
            "cluster_id": p["cluster_id"],
            "persona_name": p["persona_name"],
            "value_tier": p["value_tier"],
            "size": p["size"],
            "percentage": p["percentage"],
            **p["value"],
            "dominant_segment": p["dominant_segment"],
            "top_department": departments[0]["name"] if departments else None,
            "top_country": countries[0]["name"] if countries else None,
            "actions": "; ".join(a["action"] for a in p["recommended_actions"]),
            "description": p["description"],
        }
        if "best_matching_true_persona" in p:
            row["best_matching_true_persona"] = p["best_matching_true_persona"]
            row["best_matching_true_persona_share"] = p["best_matching_true_persona_share"]
        rows.append(row)
    return pd.DataFrame(rows)


def validate_personas(personas_dict: dict, n_clusters: int) -> list[str]:
    """Problems with a personas dict (empty list = valid): count, unique names (also without the
    tier), tiers, ranking, and names and actions that contradict the persona's own numbers."""
    problems = []
    personas = personas_dict.get("personas", [])
    thresholds = personas_dict.get("value_tier_thresholds", VALUE_TIER_THRESHOLDS)
    if len(personas) != n_clusters:
        problems.append(f"{len(personas)} personas for {n_clusters} clusters")
    names = [p.get("persona_name", "") for p in personas]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate persona names: {duplicates}")
    if any(not n.strip() for n in names):
        problems.append("empty persona name")
    bases = [n.rsplit(" [", 1)[0] for n in names]
    differ_by_tier = sorted({b for b in bases if bases.count(b) > 1} - {n.rsplit(" [", 1)[0] for n in duplicates})
    if differ_by_tier:
        problems.append(f"persona names that differ only by the tier: {differ_by_tier}")
    for persona in personas:
        problems += persona_truth_problems(persona)
    cluster_ids = [p.get("cluster_id") for p in personas]
    if len(set(cluster_ids)) != len(cluster_ids):
        problems.append(f"duplicate cluster ids: {cluster_ids}")
    for p in personas:
        expected = tier_for(p["value"]["value_index"], thresholds)
        if p.get("value_tier") != expected:
            problems.append(
                f"{p.get('persona_name')!r}: tier {p.get('value_tier')} but value index "
                f"{p['value']['value_index']} gives {expected}"
            )
    ranked = sorted(personas, key=lambda p: p.get("rank", 0))
    if [p.get("rank") for p in ranked] != list(range(1, len(personas) + 1)):
        problems.append(f"ranks are not 1..{len(personas)}")
    shares = [p["value"]["revenue_share"] for p in ranked]
    if any(a < b for a, b in zip(shares, shares[1:])):
        problems.append("ranks are not in descending order of revenue share")
    return problems


def persona_truth_problems(persona: dict) -> list[str]:
    """Words in the name, or actions, that the persona's own numbers contradict."""
    name, problems = persona.get("persona_name", ""), []
    words = name.rsplit(" [", 1)[0].split(" (", 1)[0].split()
    mix = persona.get("rfm_segment_mix", {})
    for segment, (adjective, _) in SEGMENT_LABELS.items():
        if adjective in words and mix.get(segment, 0.0) <= MAJORITY:
            problems.append(f"{name!r}: '{adjective}' but {segment} are only {mix.get(segment, 0.0):.0%} of it")
    departments = persona.get("behaviour", {}).get("top_departments", [])
    if departments and f"{departments[0]['name']} Shoppers" not in name:
        problems.append(f"{name!r}: its largest department {departments[0]['name']!r} is not in the name")
    if "over-indexes on " in name:
        named = name.split("over-indexes on ", 1)[1].split(")", 1)[0]
        distinctive = persona.get("behaviour", {}).get("distinctive_department", {}).get("name")
        if named != distinctive:
            problems.append(f"{name!r}: over-indexes on {distinctive!r}, not {named!r}")
    if persona.get("high_returns") and HIGH_RETURN_WORD not in words:
        problems.append(f"{name!r}: high return rate {persona['value']['return_rate']:.1%} not in the name")
    keys = {action["key"] for action in persona.get("recommended_actions", [])}
    if persona.get("value_tier") in LOW_TIERS and keys & set(VIP_ACTIONS):
        problems.append(f"{name!r}: {sorted(keys & set(VIP_ACTIONS))} for a {persona['value_tier']} value cluster")
    lapsed = sum(mix.get(segment, 0.0) for segment in LAPSED_SEGMENTS)
    if (lapsed > MAJORITY or persona.get("dominant_segment") in LAPSED_SEGMENTS) and not keys & set(WIN_BACK_ACTIONS):
        problems.append(f"{name!r}: {lapsed:.0%} at risk or hibernating but no win-back action")
    return problems


# --- cluster statistics -------------------------------------------------------------------------


def aligned_features(result, features: pd.DataFrame) -> pd.DataFrame:
    """The persona/chart columns of `features` in the order of `result.customer_ids`, plus the
    cluster label as `cluster`. Other columns (units, true_* details) are left out to save memory."""
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise InputDataError(f"{FEATURES_TABLE}: missing column(s) {missing} needed for personas")
    positions = table_positions(result.customer_ids, features["customer_id"], FEATURES_TABLE)
    columns = [c for c in features.columns if c in ALIGNED_COLUMNS or c.startswith(DEPT_VALUE_PREFIX)]
    frame = features[columns] if positions is None else features[columns].take(positions)
    frame = frame.reset_index(drop=True)
    frame["cluster"] = np.asarray(result.labels).astype(int)
    return frame


def _cluster_table(frame: pd.DataFrame, noise: np.ndarray | None = None) -> pd.DataFrame:
    """Per-cluster size, value numbers, segment mix, rule metrics and, for density methods, the
    number of noise customers absorbed (index = cluster id)."""
    frame = frame.assign(
        _returned=frame["return_rate"].fillna(0) * frame["monetary"],
        _noise=False if noise is None else np.asarray(noise, dtype=bool),
    )
    grouped = frame.groupby("cluster", sort=True)
    table = pd.DataFrame({
        "size": grouped.size(),
        "revenue": grouped["monetary"].sum(),
        "returned": grouped["_returned"].sum(),
        "avg_monetary": grouped["monetary"].mean(),
        "avg_frequency": grouped["frequency"].mean(),
        "avg_recency_days": grouped["recency_days"].mean(),
        "avg_order_value": grouped["avg_order_value"].mean(),
        "noise_count": grouped["_noise"].sum(),
    })
    total_revenue = table["revenue"].sum()
    customer_share = table["size"] / table["size"].sum()
    revenue_share = table["revenue"] / total_revenue if total_revenue > 0 else customer_share
    table["customer_share"] = customer_share
    table["revenue_share"] = revenue_share
    table["value_index"] = revenue_share / customer_share
    table["return_rate"] = (table["returned"] / table["revenue"]).where(table["revenue"] > 0, 0.0)
    mix = pd.crosstab(frame["cluster"], frame["segment"].astype(str), normalize="index")
    table["has_noise"] = noise is not None
    table["segment_mix"] = pd.Series(
        {c: _sorted_shares(mix.loc[c]) for c in mix.index}
    )
    for metric, segments in RULE_SEGMENT_GROUPS.items():
        table[metric] = mix.reindex(columns=list(segments), fill_value=0.0).sum(axis=1)
    return table


def _share_table(frame: pd.DataFrame, prefix: str) -> dict[str, pd.DataFrame] | None:
    """Per-cluster revenue share and lift vs overall for the `prefix` columns, or None if absent."""
    columns = [c for c in frame.columns if c.startswith(prefix)]
    if not columns:
        return None
    values = frame[columns].fillna(0).clip(lower=0)
    values.columns = [c[len(prefix):] for c in columns]
    return _shares_and_lift(values.groupby(frame["cluster"], sort=True).sum())


def _shares_and_lift(by_cluster: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Share of each column in each cluster's total (rows: clusters), and its lift over the overall share."""
    share = by_cluster.div(by_cluster.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    overall_total = by_cluster.to_numpy().sum()
    overall = by_cluster.sum() / overall_total if overall_total > 0 else by_cluster.sum() * 0
    lift = share.div(overall.replace(0, np.nan), axis=1).fillna(0.0)
    return {"share": share, "lift": lift}


def _country_table(frame: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
    """Per-cluster customer share and lift by country, or None when there is no country column."""
    if "country" not in frame.columns:
        return None
    country = frame["country"].astype(str).where(frame["country"].notna(), "Unknown")
    share = pd.crosstab(frame["cluster"], country, normalize="index")
    overall = country.value_counts(normalize=True).reindex(share.columns)
    return {"share": share, "lift": share.div(overall, axis=1)}


def _behaviour_candidates(frame: pd.DataFrame) -> dict[int, list[tuple[str, str]]]:
    """Per cluster, (behavioural adjective, reason) ordered by how far the cluster mean is from the
    overall mean."""
    traits = [t for t in BEHAVIOUR_TRAITS if t[0] in frame.columns]
    if not traits:
        return {}
    columns = [t[0] for t in traits]
    means = frame.groupby("cluster", sort=True)[columns].mean()
    overall = frame[columns].mean()
    ratio = means.div(overall.replace(0, np.nan), axis=1)
    candidates = {}
    for cluster_id, row in ratio.iterrows():
        scored = []
        for feature, above, below in traits:
            value = row[feature]
            if pd.notna(value) and value > 0 and abs(math.log(value)) >= math.log(MIN_BEHAVIOUR_RATIO):
                reason = f"mean {feature} {value:.2f}x the overall mean"
                scored.append((-abs(math.log(value)), above if value > 1 else below, reason))
        candidates[int(cluster_id)] = [(adjective, reason) for _, adjective, reason in sorted(scored)]
    return candidates


def _truth_crosstab(frame: pd.DataFrame) -> pd.DataFrame | None:
    """True persona x cluster counts for synthetic data (all clusters as columns), else None."""
    if TRUE_PERSONA not in frame.columns:
        return None
    truth = frame[TRUE_PERSONA].astype(str).where(frame[TRUE_PERSONA].notna(), "(unknown)")
    table = pd.crosstab(truth, frame["cluster"])
    return table.reindex(columns=sorted(frame["cluster"].unique()), fill_value=0)


def _best_match_summary(truth: pd.DataFrame) -> dict:
    """How well clusters recover the true personas: per-cluster best match and overall purity."""
    by_cluster = {
        str(c): {"true_persona": str(truth[c].idxmax()), "share": _num(truth[c].max() / truth[c].sum())}
        for c in truth.columns
    }
    matched = {m["true_persona"] for m in by_cluster.values()}
    return {
        "by_cluster": by_cluster,
        "purity": _num(truth.max(axis=0).sum() / truth.to_numpy().sum()),
        "true_personas_matched": len(matched),
        "true_personas_total": int(len(truth.index)),
    }


# --- one persona ---------------------------------------------------------------------------------


def _persona(cluster_id, row, n_customers, departments, classes, countries, base_return_rate) -> dict:
    """Persona fields of one cluster; name and description are added afterwards (the name depends
    on all clusters)."""
    value_index = _num(row["value_index"])
    tier = tier_for(value_index)
    mix = row["segment_mix"]
    return_rate = float(row["return_rate"])
    persona = {
        "cluster_id": cluster_id,
        "size": int(row["size"]),
        "percentage": _num(100.0 * row["size"] / n_customers, 2),
        "value_tier": tier,
        "dominant_segment": next(iter(mix)),
        "high_returns": bool(
            return_rate >= HIGH_RETURN_MIN and return_rate >= HIGH_RETURN_FACTOR * base_return_rate
        ),
        "value": {
            "revenue_share": _num(row["revenue_share"]),
            "value_index": value_index,
            "avg_monetary": _num(row["avg_monetary"], 2),
            "avg_frequency": _num(row["avg_frequency"], 2),
            "avg_recency_days": _num(row["avg_recency_days"], 1),
            "avg_order_value": _num(row["avg_order_value"], 2),
            "return_rate": _num(return_rate),
        },
        "behaviour": {"top_departments": _top(departments, cluster_id)},
        "rfm_segment_mix": {k: _num(v) for k, v in mix.items()},
    }
    if row["has_noise"]:
        persona["absorbed_noise"] = {
            "count": int(row["noise_count"]),
            "share": _num(row["noise_count"] / row["size"]),
        }
    distinctive = _distinctive(departments, cluster_id)
    if distinctive:
        persona["behaviour"]["distinctive_department"] = {
            "name": distinctive[0],
            "share": _num(departments["share"].loc[cluster_id, distinctive[0]]),
            "lift": _num(departments["lift"].loc[cluster_id, distinctive[0]], 2),
        }
    if classes is not None:
        persona["behaviour"]["top_classes"] = _top(classes, cluster_id)
    if countries is not None:
        top_countries = _top(countries, cluster_id)
        persona["geography"] = {
            "top_countries": top_countries,
            "concentration": concentration_label(top_countries[0]["share"] if top_countries else 0.0),
        }
    metrics = {metric: float(row[metric]) for metric in RULE_SEGMENT_GROUPS}
    metrics["return_rate"] = return_rate
    metrics["value_index"] = value_index
    top_departments = persona["behaviour"]["top_departments"]
    if top_departments:
        metrics["top_department_share"] = top_departments[0]["share"]
    context = {"top_department": top_departments[0]["name"] if top_departments else ""}
    persona["recommended_actions"] = recommend_actions(metrics, context, tier)
    return persona


def concentration_label(top_country_share: float) -> str:
    """'High' above 70 %, 'Medium' from 40 % to 70 %, 'Low' below 40 % (see GEO_* constants)."""
    if top_country_share > GEO_HIGH_ABOVE:
        return "High"
    if top_country_share >= GEO_MEDIUM_FROM:
        return "Medium"
    return "Low"


def recommend_actions(
    metrics: dict[str, float], context: dict[str, str] | None = None, tier: str | None = None
) -> list[dict]:
    """Actions of every rule in ACTION_RULES that fires on `metrics` (and, for tier-bound rules,
    on the cluster's `tier`), each with its trigger."""
    actions = []
    for rule in ACTION_RULES:
        value = metrics.get(rule.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if rule.tiers is not None and tier not in rule.tiers:
            continue
        fires = value >= rule.threshold if rule.operator == ">=" else value < rule.threshold
        if not fires:
            continue
        label, as_percent = RULE_METRICS[rule.metric]
        shown = (lambda x: f"{x:.1%}") if as_percent else (lambda x: f"{x:.2f}")
        reason = f"{label} is {shown(value)} ({rule.operator} {shown(rule.threshold)})"
        if rule.tiers is not None:
            reason += f" in a {tier} value cluster"
        actions.append({
            "key": rule.key,
            "action": rule.action.format(**(context or {})),
            "reason": reason,
            "metric": rule.metric,
            "value": _num(value),
            "operator": rule.operator,
            "threshold": rule.threshold,
        })
    return actions or [dict(DEFAULT_ACTION)]


def _describe(persona: dict) -> str:
    """A paragraph written from the persona's numbers."""
    v = persona["value"]
    parts = [
        f"{persona['size']:,} customers ({persona['percentage']:.1f}% of the base) bring "
        f"{v['revenue_share']:.1%} of gross revenue, a value index of {v['value_index']:.2f} "
        f"({persona['value_tier']} tier).",
        f"On average they placed {v['avg_frequency']:.1f} orders, last bought "
        f"{v['avg_recency_days']:.0f} days ago and spent {v['avg_monetary']:,.2f} in total "
        f"({v['avg_order_value']:,.2f} per order).",
    ]
    segments = list(persona["rfm_segment_mix"].items())
    lead = "Most are" if segments[0][1] > MAJORITY else "The largest group are"
    segment_text = f"{lead} {_segment_phrase(segments[0][0])} ({segments[0][1]:.0%})"
    if len(segments) > 1:
        segment_text += f", followed by {_segment_phrase(segments[1][0])} ({segments[1][1]:.0%})"
    parts.append(segment_text + ".")
    departments = persona["behaviour"]["top_departments"]
    if departments:
        top, distinctive = departments[0], persona["behaviour"]["distinctive_department"]
        text = f"Their largest department is {top['name']} ({top['share']:.0%} of department revenue"
        if distinctive["name"] == top["name"]:
            text += f", {top['lift']:.2f}x the overall share)."
        else:
            text += (
                f"); compared with all customers they over-index most on {distinctive['name']} "
                f"({distinctive['share']:.0%}, {distinctive['lift']:.2f}x the overall share)."
            )
        parts.append(text)
    returns = f"They return {v['return_rate']:.1%} of the value they buy"
    parts.append(returns + (", well above the base rate." if persona["high_returns"] else "."))
    noise = persona.get("absorbed_noise")
    if noise and noise["count"]:
        parts.append(
            f"{noise['count']:,} of them ({noise['share']:.0%}) lie in no dense region (HDBSCAN noise) "
            "and were assigned to this nearest cluster."
        )
    geography = persona.get("geography")
    if geography and geography["top_countries"]:
        top = geography["top_countries"][0]
        parts.append(
            f"{top['share']:.0%} are based in {top['name']} "
            f"({geography['concentration'].lower()} geographic concentration)."
        )
    return " ".join(parts)


# --- names ---------------------------------------------------------------------------------------


def _assign_names(personas, departments, countries, behaviour) -> None:
    """Give each persona a name that is unique without its tier, and record why each word is there.

    Clusters whose names clash take qualifiers in rank order (the most valuable picks first):
    the department they over-index on, then behavioural adjectives, then further departments or
    countries; "cluster <id>" when nothing else tells them apart.
    """
    parts = {p["cluster_id"]: _name_parts(p, departments, countries, behaviour) for p in personas}
    # Each cluster's position in its qualifier list (-1 = none yet); past the end = "cluster <id>",
    # which is unique, so the loop ends.
    position = dict.fromkeys(parts, -1)

    def qualifier(cid: int) -> tuple[str, str] | None:
        options = parts[cid]["qualifiers"]
        if position[cid] < 0:
            return None
        if position[cid] < len(options):
            return options[position[cid]]
        return f"cluster {cid}", "nothing else in its numbers tells it apart"

    while True:
        bases = {cid: _base_name(parts[cid], qualifier(cid)) for cid in parts}
        groups = [[p["cluster_id"] for p in personas if bases[p["cluster_id"]] == base]
                  for base in dict.fromkeys(bases.values())]
        groups = [group for group in groups if len(group) > 1]
        if not groups:
            break
        for group in groups:
            taken: set[str] = set()
            for cid in group:  # personas are in rank order, so the most valuable picks first
                position[cid] += 1
                while position[cid] < len(parts[cid]["qualifiers"]) and qualifier(cid)[0] in taken:
                    position[cid] += 1
                taken.add(qualifier(cid)[0])
    for persona in personas:
        cid = persona["cluster_id"]
        part = parts[cid]
        chosen = qualifier(cid)
        persona["persona_name"] = f"{_base_name(part, chosen)} [{part['tier']} VALUE]"
        persona["name_basis"] = {**part["basis"], **(
            {"qualifier": chosen[0], "qualifier_reason": chosen[1]} if chosen else {}
        )}


def _base_name(parts: dict, qualifier: tuple[str, str] | None) -> str:
    words = " ".join(word for word in (parts["returns"], parts["descriptor"], parts["core"]) if word)
    return f"{words} ({qualifier[0]})" if qualifier else words


def _name_parts(persona, departments, countries, behaviour) -> dict:
    """Descriptor, core noun phrase, return flag, tier, qualifier candidates and the reason for each."""
    cid = persona["cluster_id"]
    segment, share = next(iter(persona["rfm_segment_mix"].items()))
    if share > MAJORITY:
        descriptor = _segment_adjective(segment)
        basis = {"descriptor": descriptor, "descriptor_reason": f"{_segment_phrase(segment)} are {share:.0%} of the cluster"}
    else:
        descriptor = MIXED_DESCRIPTOR
        basis = {
            "descriptor": descriptor,
            "descriptor_reason": f"no RFM segment is a majority (largest: {_segment_phrase(segment)}, {share:.0%})",
        }
    core, qualifiers = "Customers", []
    top_departments = persona["behaviour"]["top_departments"]
    if top_departments:
        top = top_departments[0]
        core = f"{top['name']} Shoppers"
        basis |= {"department": top["name"], "department_reason": f"largest share of the cluster's spend ({top['share']:.0%})"}
        distinctive = persona["behaviour"].get("distinctive_department")
        if distinctive and distinctive["name"] != top["name"]:
            qualifiers.append((
                f"over-indexes on {distinctive['name']}",
                f"{distinctive['name']} takes {distinctive['share']:.0%} of its spend, "
                f"{distinctive['lift']:.2f}x the share among all customers",
            ))
    elif countries is not None:
        top_country = _rank_desc(countries["share"].loc[cid])[0]
        country_share = float(countries["share"].loc[cid, top_country])
        if country_share >= COUNTRY_MAJORITY:
            core = f"Shoppers from {top_country}"
            basis |= {"country": top_country, "country_reason": f"{country_share:.0%} of its customers live there"}
    qualifiers += behaviour.get(cid, [])
    qualifiers += [
        (f"+ {entry['name']}", f"also buys {entry['name']} ({entry['share']:.0%} of its spend)")
        for entry in top_departments[1:]
    ]
    qualifiers += [
        (f"from {name}", f"{name} is home to {countries['share'].loc[cid, name]:.0%} of its customers, "
                         f"{countries['lift'].loc[cid, name]:.2f}x the share among all customers")
        for name in _distinctive(countries, cid)
    ]
    returns = ""
    if persona["high_returns"]:
        returns = HIGH_RETURN_WORD
        basis |= {"returns": returns,
                  "returns_reason": f"returns {persona['value']['return_rate']:.1%} of what it buys"}
    return {"descriptor": descriptor, "core": core, "returns": returns, "tier": persona["value_tier"],
            "qualifiers": qualifiers, "basis": basis}


def _distinctive(table, cluster_id) -> list[str]:
    """Trait names of a cluster by lift: first the best eligible one, then the others with lift > 1."""
    if table is None:
        return []
    share, lift = table["share"].loc[cluster_id], table["lift"].loc[cluster_id]
    eligible = share[share >= MIN_TRAIT_SHARE]
    if eligible.empty:
        eligible = share[share == share.max()]
    ordered = _rank_desc(lift[eligible.index])
    if not ordered:
        return []
    return [ordered[0]] + [name for name in ordered[1:] if lift[name] > 1.0]


def segment_title(segment: str) -> str:
    """Display name of an RFM segment: 'at_risk' -> 'at risk', 'cant_lose' -> "can't lose"."""
    return "can't lose" if segment == "cant_lose" else segment.replace("_", " ")


def _segment_adjective(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, (segment.replace("_", " ").title(), ""))[0]


def _segment_phrase(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, ("", segment.replace("_", " ")))[1]


# --- small helpers -------------------------------------------------------------------------------


def _top(table, cluster_id) -> list[dict]:
    """Top TOP_N entries of a share table for one cluster as [{name, share, lift}]."""
    if table is None:
        return []
    share, lift = table["share"].loc[cluster_id], table["lift"].loc[cluster_id]
    names = [n for n in _rank_desc(share) if share[n] > 0][:TOP_N]
    return [{"name": str(n), "share": _num(share[n]), "lift": _num(lift[n], 2)} for n in names]


def _rank_desc(series: pd.Series) -> list:
    """Index labels by descending value, ties broken by label so the order is deterministic."""
    return [name for _, name in sorted(zip(-series.to_numpy(dtype=float), series.index.astype(str)))]


def _sorted_shares(row: pd.Series) -> dict[str, float]:
    return {name: float(row[name]) for name in _rank_desc(row) if row[name] > 0}


def _num(value, digits: int = 4):
    """JSON-ready rounded float (None for NaN)."""
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


_FIELD_ORDER = (
    "persona_name", "name_basis", "cluster_id", "rank", "size", "percentage", "value_tier",
    "dominant_segment", "high_returns", "absorbed_noise", "value", "behaviour", "geography", "rfm_segment_mix", "description", "recommended_actions",
    "best_matching_true_persona", "best_matching_true_persona_share",
)


def _ordered(persona: dict) -> dict:
    """Persona dict with a stable, readable key order for the JSON output."""
    return {key: persona[key] for key in _FIELD_ORDER if key in persona}

"""One persona per cluster, named and described from the cluster's own numbers.

Nothing here knows persona names in advance: a name is assembled from the cluster's dominant
RFM segment, its most distinctive department (or country when there are no departments) and its
value tier, so the same code names clusters of any data set. Recommended actions come from the
documented rule table `ACTION_RULES`, and every action carries the number that triggered it, so a
reader can audit why a persona got it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation_pipeline.errors import InputDataError

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
# Optional columns used when present (besides dept_value:* and class_value:*).
OPTIONAL_COLUMNS = ("tenure_months", "r_score", "f_score", "m_score", "country", "true_persona")
ALIGNED_COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class ActionRule:
    """Recommend `action` when the cluster's `metric` compares (`operator`) to `threshold`."""

    key: str
    metric: str
    operator: str  # ">=" or "<"
    threshold: float
    action: str  # may use {top_department}


# Metrics the rules read, with a label and whether they print as a percentage.
RULE_METRICS: dict[str, tuple[str, bool]] = {
    "at_risk_share": ("share of at_risk + cant_lose customers", True),
    "champions_share": ("share of champions", True),
    "loyal_share": ("share of loyal_customers + potential_loyalists", True),
    "new_share": ("share of new_customers + promising", True),
    "fading_share": ("share of need_attention + about_to_sleep", True),
    "hibernating_share": ("share of hibernating customers", True),
    "return_rate": ("return rate (returned / purchased value)", True),
    "value_index": ("value index (revenue share / customer share)", False),
    "top_department_share": ("top department's share of department revenue", True),
}
# Segments summed into each *_share metric above.
RULE_SEGMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "at_risk_share": ("at_risk", "cant_lose"),
    "champions_share": ("champions",),
    "loyal_share": ("loyal_customers", "potential_loyalists"),
    "new_share": ("new_customers", "promising"),
    "fading_share": ("need_attention", "about_to_sleep"),
    "hibernating_share": ("hibernating",),
}

ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule("win_back", "at_risk_share", ">=", 0.30,
               "Win-back campaign: personal offer and a reminder of past favourites"),
    ActionRule("vip_programme", "champions_share", ">=", 0.30,
               "Loyalty / VIP programme: early access, exclusive perks, referral invitations"),
    ActionRule("loyalty_nurture", "loyal_share", ">=", 0.30,
               "Nurture towards VIP status: personalised recommendations and membership offers"),
    ActionRule("onboarding", "new_share", ">=", 0.30,
               "Onboarding journey: welcome series and a second-purchase incentive"),
    ActionRule("pre_lapse_offer", "fading_share", ">=", 0.30,
               "Time-limited offer to re-engage before these customers lapse"),
    ActionRule("low_cost_reactivation", "hibernating_share", ">=", 0.30,
               "Low-cost reactivation (email only); keep out of paid media spend"),
    ActionRule("returns_review", "return_rate", ">=", 0.10,
               "Returns review: sizing and quality checks, clearer product information"),
    ActionRule("priority_service", "value_index", ">=", VALUE_TIER_THRESHOLDS["HIGH"],
               "Retention and priority service: dedicated support and proactive account care"),
    ActionRule("low_cost_service", "value_index", "<", VALUE_TIER_THRESHOLDS["LOW"],
               "Serve through low-cost automated channels and limit discounting"),
    ActionRule("cross_sell", "top_department_share", ">=", 0.50,
               "Cross-sell beyond {top_department}: bundles with complementary departments"),
)
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


def build_personas(result, features: pd.DataFrame) -> dict:
    """JSON-ready personas of one clustering result, ranked by revenue share (rank 1 = most valuable)."""
    frame = aligned_features(result, features)
    clusters = _cluster_table(frame)
    departments = _share_table(frame, "dept_value:")
    classes = _share_table(frame, "class_value:")
    countries = _country_table(frame)
    behaviour = _behaviour_candidates(frame)
    truth = _truth_crosstab(frame)

    personas = []
    for cluster_id, row in clusters.iterrows():
        persona = _persona(int(cluster_id), row, len(frame), departments, classes, countries)
        if truth is not None:
            match = truth[cluster_id]
            persona["best_matching_true_persona"] = str(match.idxmax())
            persona["best_matching_true_persona_share"] = _num(match.max() / match.sum())
        personas.append(persona)

    personas.sort(key=lambda p: (-p["value"]["revenue_share"], -p["size"], p["cluster_id"]))
    for rank, persona in enumerate(personas, start=1):
        persona["rank"] = rank
    _assign_names(personas, departments, countries, behaviour)

    output = {
        "method": str(result.method),
        "value_tier_thresholds": dict(VALUE_TIER_THRESHOLDS),
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
    """Problems with a personas dict (empty list = valid): count, unique names, tiers, ranking."""
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


# --- cluster statistics -------------------------------------------------------------------------


def aligned_features(result, features: pd.DataFrame) -> pd.DataFrame:
    """The persona/chart columns of `features` in the order of `result.customer_ids`, plus the
    cluster label as `cluster`. Other columns (units, true_* details) are left out to save memory."""
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise InputDataError(f"{FEATURES_TABLE}: missing column(s) {missing} needed for personas")
    ids = pd.Index(np.asarray(result.customer_ids).astype(str))
    known = pd.Index(features["customer_id"].astype(str))
    if not known.is_unique:
        raise InputDataError(f"{FEATURES_TABLE}: column 'customer_id' has duplicate values")
    positions = known.get_indexer(ids)
    if (positions < 0).any():
        unknown = ids[positions < 0]
        raise InputDataError(
            f"{FEATURES_TABLE}: column 'customer_id' lacks {len(unknown)} clustered customer(s), "
            f"e.g. {list(unknown[:3])}"
        )
    columns = [c for c in features.columns
               if c in ALIGNED_COLUMNS or c.startswith(("dept_value:", "class_value:"))]
    frame = features[columns].take(positions).reset_index(drop=True)
    frame["cluster"] = np.asarray(result.labels).astype(int)
    return frame


def _cluster_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-cluster size, value numbers, segment mix and rule metrics (index = cluster id)."""
    frame = frame.assign(
        _returned=frame["return_rate"].fillna(0) * frame["monetary"],
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
    })
    total_revenue = table["revenue"].sum()
    customer_share = table["size"] / table["size"].sum()
    revenue_share = table["revenue"] / total_revenue if total_revenue > 0 else customer_share
    table["customer_share"] = customer_share
    table["revenue_share"] = revenue_share
    table["value_index"] = revenue_share / customer_share
    table["return_rate"] = (table["returned"] / table["revenue"]).where(table["revenue"] > 0, 0.0)
    mix = pd.crosstab(frame["cluster"], frame["segment"].astype(str), normalize="index")
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
    by_cluster = values.groupby(frame["cluster"], sort=True).sum()
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


def _behaviour_candidates(frame: pd.DataFrame) -> dict[int, list[str]]:
    """Per cluster, behavioural adjectives ordered by how far the cluster mean is from the overall."""
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
                scored.append((-abs(math.log(value)), above if value > 1 else below))
        candidates[int(cluster_id)] = [adjective for _, adjective in sorted(scored)]
    return candidates


def _truth_crosstab(frame: pd.DataFrame) -> pd.DataFrame | None:
    """True persona x cluster counts for synthetic data (all clusters as columns), else None."""
    if "true_persona" not in frame.columns:
        return None
    truth = frame["true_persona"].astype(str).where(frame["true_persona"].notna(), "(unknown)")
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


def _persona(cluster_id, row, n_customers, departments, classes, countries) -> dict:
    """Persona fields of one cluster; the name is assigned afterwards (it depends on all clusters)."""
    value_index = _num(row["value_index"])
    tier = tier_for(value_index)
    mix = row["segment_mix"]
    persona = {
        "cluster_id": cluster_id,
        "size": int(row["size"]),
        "percentage": _num(100.0 * row["size"] / n_customers, 2),
        "value_tier": tier,
        "dominant_segment": next(iter(mix)),
        "value": {
            "revenue_share": _num(row["revenue_share"]),
            "value_index": value_index,
            "avg_monetary": _num(row["avg_monetary"], 2),
            "avg_frequency": _num(row["avg_frequency"], 2),
            "avg_recency_days": _num(row["avg_recency_days"], 1),
            "avg_order_value": _num(row["avg_order_value"], 2),
            "return_rate": _num(row["return_rate"]),
        },
        "behaviour": {"top_departments": _top(departments, cluster_id)},
        "rfm_segment_mix": {k: _num(v) for k, v in mix.items()},
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
    metrics["return_rate"] = float(row["return_rate"])
    metrics["value_index"] = value_index
    top_departments = persona["behaviour"]["top_departments"]
    if top_departments:
        metrics["top_department_share"] = top_departments[0]["share"]
    context = {"top_department": top_departments[0]["name"] if top_departments else ""}
    persona["recommended_actions"] = recommend_actions(metrics, context)
    persona["description"] = _describe(persona)
    return persona


def concentration_label(top_country_share: float) -> str:
    """'High' above 70 %, 'Medium' from 40 % to 70 %, 'Low' below 40 % (see GEO_* constants)."""
    if top_country_share > GEO_HIGH_ABOVE:
        return "High"
    if top_country_share >= GEO_MEDIUM_FROM:
        return "Medium"
    return "Low"


def recommend_actions(metrics: dict[str, float], context: dict[str, str] | None = None) -> list[dict]:
    """Actions of every rule in ACTION_RULES that fires on `metrics`, each with its trigger."""
    actions = []
    for rule in ACTION_RULES:
        value = metrics.get(rule.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        fires = value >= rule.threshold if rule.operator == ">=" else value < rule.threshold
        if not fires:
            continue
        label, as_percent = RULE_METRICS[rule.metric]
        shown = (lambda x: f"{x:.1%}") if as_percent else (lambda x: f"{x:.2f}")
        actions.append({
            "key": rule.key,
            "action": rule.action.format(**(context or {})),
            "reason": f"{label} is {shown(value)} ({rule.operator} {shown(rule.threshold)})",
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
    segment_text = f"Most are {_segment_phrase(segments[0][0])} ({segments[0][1]:.0%})"
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
    parts.append(f"They return {v['return_rate']:.1%} of the value they buy.")
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
    """Give each persona a unique name; clashes get the next most distinctive trait as qualifier."""
    parts = {p["cluster_id"]: _name_parts(p, departments, countries, behaviour) for p in personas}
    names = {cid: _compose(part, None) for cid, part in parts.items()}
    for name in sorted(set(names.values())):
        clashing = [p["cluster_id"] for p in personas if names[p["cluster_id"]] == name]
        if len(clashing) < 2:
            continue
        taken: set[str] = set()
        for cid in clashing:  # personas are in rank order, so the most valuable picks first
            qualifier = next((q for q in parts[cid]["qualifiers"] if q not in taken), None)
            taken.add(qualifier)
            names[cid] = _compose(parts[cid], qualifier)
    seen: set[str] = set()
    for persona in personas:
        cid = persona["cluster_id"]
        name = names[cid]
        if name in seen or list(names.values()).count(name) > 1:
            name = _compose(parts[cid], f"cluster {cid}")
        seen.add(name)
        persona["persona_name"] = name


def _name_parts(persona, departments, countries, behaviour) -> dict:
    """Segment adjective, core noun phrase, tier and ordered qualifier candidates of one cluster."""
    cid = persona["cluster_id"]
    core, qualifiers = "Customers", []
    department_traits = _distinctive(departments, cid)
    country_traits = _distinctive(countries, cid)
    if department_traits:
        core = f"{department_traits[0]} Shoppers"
        qualifiers += [f"+ {d}" for d in department_traits[1:]]
        qualifiers += country_traits
    elif country_traits:
        core = f"Shoppers from {country_traits[0]}"
        qualifiers += [f"+ {c}" for c in country_traits[1:]]
    qualifiers += behaviour.get(cid, [])
    return {
        "segment": _segment_adjective(persona["dominant_segment"]),
        "core": core,
        "tier": persona["value_tier"],
        "qualifiers": qualifiers,
    }


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


def _compose(parts: dict, qualifier: str | None) -> str:
    suffix = f" ({qualifier})" if qualifier else ""
    return f"{parts['segment']} {parts['core']}{suffix} [{parts['tier']} VALUE]"


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
    "persona_name", "cluster_id", "rank", "size", "percentage", "value_tier", "dominant_segment",
    "value", "behaviour", "geography", "rfm_segment_mix", "description", "recommended_actions",
    "best_matching_true_persona", "best_matching_true_persona_share",
)


def _ordered(persona: dict) -> dict:
    """Persona dict with a stable, readable key order for the JSON output."""
    return {key: persona[key] for key in _FIELD_ORDER if key in persona}

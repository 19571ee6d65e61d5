"""Lead personas (the content of leads/personas.json) and the clustered-leads table.

One persona per cluster, ranked by conversion rate (best first). Its name is built from the data:
the cluster's dominant seniority (or job title when seniority is Unknown) and its dominant industry
(or, when the file has no industry, the value most over-represented in the cluster), plus the value
tier: "Management in Banking [HIGH VALUE]". Names are made unique by adding the most distinctive
value, then the cluster id. A cluster below the minimum size is named "[SMALL SAMPLE]" and has no tier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation_pipeline.leads.cleaning import UNKNOWN, CleanedLeads, canonical_frame
from segmentation_pipeline.leads.conversion import RATE_DECIMALS, conversion_by
from segmentation_pipeline.leads.scoring import ConversionScore
from segmentation_pipeline.leads.segmentation import LeadSegmentation
from segmentation_pipeline.leads.settings import LeadsSettings

TOP_VALUES = 5  # states, industries and titles listed per persona (the rest as "Other")
TOP_STATES_FOR_CONCENTRATION = 3
CONCENTRATION_LEVELS = ((0.70, "High"), (0.40, "Medium"))  # share of leads in the top 3 states; else Low
DISTINCTIVE_MIN_SHARE = 0.30  # a value names a persona only if this share of its leads have it
SMALL_SAMPLE = "SMALL SAMPLE"
OTHER = "Other"
# (column, how a distinctive value of it reads in a name)
DISTINCTIVE_COLUMNS = (
    ("industry", "{}"),
    ("lead_source", "via {}"),
    ("age_range", "aged {}"),
    ("years_experience", "{} yrs experience"),
    ("education_level", "{} education"),
    ("state", "in {}"),
    ("job_title", "{}"),
)
METRIC_DECIMALS = RATE_DECIMALS
PERCENT_DECIMALS = 2


def build_personas(
    clean: pd.DataFrame, labels: np.ndarray, conversion: pd.DataFrame, settings: LeadsSettings
) -> dict:
    """The personas document: overall figures and one persona per cluster, ranked by conversion rate."""
    labels = np.asarray(labels)
    total = len(clean)
    overall_rate = float(clean["is_sale"].mean()) if total else 0.0
    ranked = conversion.sort_values(["conversion_rate", "cluster"], ascending=[False, True], kind="stable")
    personas = []
    for rank, row in enumerate(ranked.itertuples(index=False), start=1):
        members = clean[labels == row.cluster]
        personas.append(
            {
                "persona_name": None,  # named below, once every persona is known
                "cluster_id": int(row.cluster),
                "cluster_size": int(row.total_records),
                "cluster_percentage": round(100 * row.total_records / total, PERCENT_DECIMALS) if total else 0.0,
                "rank": rank,
                "conversion_metrics": {
                    "conversion_rate": round(float(row.conversion_rate), METRIC_DECIMALS),
                    "value_tier": row.value_tier,
                    "conversions": int(row.conversions),
                    "non_conversions": int(row.non_conversions),
                    "total_records": int(row.total_records),
                    "ci_low": round(float(row.ci_low), METRIC_DECIMALS),
                    "ci_high": round(float(row.ci_high), METRIC_DECIMALS),
                    "lift": None if pd.isna(row.lift) else round(float(row.lift), METRIC_DECIMALS),
                    "small_sample": bool(row.small_sample),
                },
                "demographics": {
                    "seniority": _mix(members["seniority"]),
                    "experience": _mix(members["years_experience"]),
                    "age": _mix(members["age_range"]),
                    "gender": _mix(members["gender"]),
                },
                "geography": _geography(members["state"]),
                "professional": {
                    "industries": _mix(members["industry"], TOP_VALUES),
                    "titles": _mix(members["job_title"], TOP_VALUES),
                    "education": _mix(members["education_level"]),
                },
                "acquisition": {"lead_sources": _sources(members)},
            }
        )
    _name(personas, clean, labels)
    return {
        "total_leads": total,
        "overall_conversion_rate": round(overall_rate, METRIC_DECIMALS),
        "n_personas": len(personas),
        "value_tier_thresholds": settings.value_tiers.model_dump(),
        "min_cluster_size": settings.min_cluster_size,
        "concentration_basis": f"share of the persona's leads with a known state that are in its top "
        f"{TOP_STATES_FOR_CONCENTRATION} states: High > 70%, Medium 40-70%, Low < 40% (Unknown: no state known)",
        "personas": personas,
    }


def clustered_leads_table(
    raw: pd.DataFrame,
    cleaned: CleanedLeads,
    segmentation: LeadSegmentation,
    score: ConversionScore,
    personas: dict,
    settings: LeadsSettings,
) -> pd.DataFrame:
    """The input rows, same count and order, plus Cluster, Persona and conversion_score.

    Clean leads keep the labels and scores they were fitted with; a rejected lead (unreadable outcome)
    still has usable attributes, so the model bundle and the scorer assign it like a new lead.
    """
    clusters = np.empty(len(raw), dtype=np.int64)
    scores = np.empty(len(raw), dtype=float)
    clean_rows = cleaned.clean["source_row"].to_numpy()
    clusters[clean_rows] = segmentation.labels
    scores[clean_rows] = score.scores
    if len(cleaned.rejected):
        rejected_rows = cleaned.rejected["source_row"].to_numpy()
        features = canonical_frame(raw.iloc[rejected_rows], settings)
        encoded = segmentation.bundle.transform.transform(features)
        clusters[rejected_rows] = segmentation.bundle.assign(encoded).labels
        scores[rejected_rows] = score.scorer.predict(encoded)
    names = {p["cluster_id"]: p["persona_name"] for p in personas["personas"]}
    table = raw.reset_index(drop=True).copy()
    table["Cluster"] = clusters
    table["Persona"] = pd.Series(table["Cluster"].map(names), dtype="category")
    table["conversion_score"] = np.round(scores, METRIC_DECIMALS)
    return table


def concentration_of(top_share: float) -> str:
    for minimum, level in CONCENTRATION_LEVELS:
        if top_share > minimum:
            return level
    return "Low"


def _mix(values: pd.Series, top: int | None = None) -> dict[str, float]:
    """Percentage of each value (categorical order, or the `top` most common plus "Other"); sums to 100."""
    counts = values.value_counts(sort=top is not None)
    counts = counts[counts > 0]
    if top is not None and len(counts) > top:
        counts = pd.concat([counts.iloc[:top], pd.Series({OTHER: counts.iloc[top:].sum()})])
    total = counts.sum()
    return {str(k): round(100 * float(v) / total, PERCENT_DECIMALS) for k, v in counts.items()} if total else {}


def _geography(states: pd.Series) -> dict:
    """Top known states and how concentrated the known states are (Unknown counts separately)."""
    counts = states.value_counts(sort=True)
    unknown = int(counts.get(UNKNOWN, 0))
    counts = counts[(counts > 0) & (counts.index.astype(str) != UNKNOWN)]
    known = int(counts.sum())
    top_share = float(counts.iloc[:TOP_STATES_FOR_CONCENTRATION].sum()) / known if known else None
    return {
        "top_states": [
            {"state": str(state), "leads": int(n), "percentage": round(100 * float(n) / known, PERCENT_DECIMALS)}
            for state, n in counts.iloc[:TOP_VALUES].items()
        ],
        "top_states_share": None if top_share is None else round(100 * top_share, PERCENT_DECIMALS),
        "concentration": UNKNOWN if top_share is None else concentration_of(top_share),
        "unknown_state_percentage": round(100 * unknown / len(states), PERCENT_DECIMALS) if len(states) else 0.0,
    }


def _sources(members: pd.DataFrame) -> list[dict]:
    table = conversion_by(members["lead_source"], members["is_sale"].to_numpy())
    total = int(table["leads"].sum())
    return [
        {
            "source": str(source),
            "leads": int(row.leads),
            "percentage": round(100 * float(row.leads) / total, PERCENT_DECIMALS),
            "conversions": int(row.conversions),
            "conversion_rate": round(float(row.conversion_rate), METRIC_DECIMALS),
        }
        for source, row in table.iterrows()
    ]


def _name(personas: list[dict], clean: pd.DataFrame, labels: np.ndarray) -> None:
    """Data-driven, unique persona names (in place)."""
    bases, extras = [], []
    overall = {column: clean[column].value_counts(normalize=True) for column, _ in DISTINCTIVE_COLUMNS}
    for persona in personas:
        members = clean[labels == persona["cluster_id"]]
        role = _dominant(members["seniority"]) or _dominant(members["job_title"]) or "Mixed roles"
        industry = _dominant(members["industry"])
        distinctive = [
            d for d in _distinctive(members, overall) if d.casefold() not in (role.casefold(), str(industry).casefold())
        ]
        if industry:
            base = f"{role} in {industry}"
        else:
            base = f"{role}, {distinctive.pop(0)}" if distinctive else role
        bases.append(base[:1].upper() + base[1:])
        extras.append(distinctive)
    names = list(bases)
    for attempt in range(2):
        repeated = {name for name in names if names.count(name) > 1}
        for index, name in enumerate(names):
            if name in repeated:
                cluster = personas[index]["cluster_id"]
                names[index] = f"{name}, {extras[index][0]}" if attempt == 0 and extras[index] else f"{name} (cluster {cluster})"
    for persona, name in zip(personas, names):
        tier = persona["conversion_metrics"]["value_tier"]
        persona["persona_name"] = f"{name} [{SMALL_SAMPLE if tier is None else f'{tier} VALUE'}]"


def _dominant(values: pd.Series) -> str | None:
    """The most common value when it is known, else None."""
    counts = values.value_counts(sort=True)
    if counts.empty or counts.iloc[0] == 0 or str(counts.index[0]) == UNKNOWN:
        return None
    return str(counts.index[0])


def _distinctive(members: pd.DataFrame, overall: dict[str, pd.Series]) -> list[str]:
    """Known values held by at least DISTINCTIVE_MIN_SHARE of the members, most over-represented first
    (`overall`: each column's shares among all leads)."""
    found = []
    for column, template in DISTINCTIVE_COLUMNS:
        share = members[column].value_counts(normalize=True)
        lift = (share / overall[column].reindex(share.index)).where(share >= DISTINCTIVE_MIN_SHARE).dropna()
        lift = lift[[str(value) != UNKNOWN for value in lift.index]]
        if not lift.empty:
            found.append((float(lift.max()), template.format(lift.idxmax())))
    return [text for _, text in sorted(found, key=lambda item: -item[0])]

"""Invariants of the leads outputs as `*_problems(...) -> list[str]` functions (empty = fine); the
Dagster asset checks are thin wrappers over them. Each message names what is wrong and by how much.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segmentation_pipeline.leads.cleaning import CleanedLeads
from segmentation_pipeline.leads.settings import LeadsSettings

PERCENT_TOLERANCE = 0.05  # rounded percentages may miss 100 by a few hundredths


def split_problems(raw: pd.DataFrame, cleaned: CleanedLeads) -> list[str]:
    """Raw = clean + rejected: every raw row lands in exactly one of them, and rejects say why."""
    problems = []
    clean_rows = cleaned.clean["source_row"].to_numpy()
    rejected_rows = cleaned.rejected["source_row"].to_numpy()
    if len(clean_rows) + len(rejected_rows) != len(raw):
        problems.append(f"raw has {len(raw):,} rows but clean + rejected = {len(clean_rows):,} + {len(rejected_rows):,}")
    rows = np.concatenate([clean_rows, rejected_rows])
    if len(np.unique(rows)) != len(rows) or (len(rows) and (rows.min() < 0 or rows.max() >= len(raw))):
        problems.append("a raw row is in both clean and rejected, twice in one of them, or out of range")
    if len(cleaned.rejected) and cleaned.rejected["reject_reason"].isna().any():
        problems.append("a rejected lead has no reject_reason")
    return problems


def conversion_problems(conversion: pd.DataFrame, clean: pd.DataFrame) -> list[str]:
    """Per cluster conversions + non-conversions = total; totals and conversions add up to the clean
    leads; each rate lies inside its interval."""
    problems = []
    parts = conversion["conversions"] + conversion["non_conversions"]
    for row in conversion[parts != conversion["total_records"]].itertuples():
        problems.append(
            f"cluster {row.cluster}: conversions {row.conversions} + non-conversions {row.non_conversions} "
            f"!= total {row.total_records}"
        )
    if conversion["total_records"].sum() != len(clean):
        problems.append(f"cluster totals add up to {conversion['total_records'].sum():,}, not {len(clean):,} clean leads")
    converted = int(clean["is_sale"].sum())
    if conversion["conversions"].sum() != converted:
        problems.append(f"cluster conversions add up to {conversion['conversions'].sum():,}, not {converted:,}")
    outside = conversion[(conversion["conversion_rate"] < conversion["ci_low"] - 1e-12)
                         | (conversion["conversion_rate"] > conversion["ci_high"] + 1e-12)]
    problems += [f"cluster {row.cluster}: rate {row.conversion_rate:.4f} outside its interval" for row in outside.itertuples()]
    return problems


def assignment_problems(clustered: pd.DataFrame, raw_rows: int, n_clusters: int) -> list[str]:
    """Every input lead has exactly one cluster in 0..n_clusters-1, in input order, none left empty."""
    problems = []
    if len(clustered) != raw_rows:
        problems.append(f"clustered leads have {len(clustered):,} rows, the input {raw_rows:,}")
    clusters = clustered["Cluster"]
    if clusters.isna().any():
        problems.append(f"{int(clusters.isna().sum()):,} leads have no cluster")
    values = clusters.dropna().to_numpy()
    outside = (values < 0) | (values >= n_clusters) | (values != np.round(values))
    if outside.any():
        problems.append(f"{int(outside.sum()):,} leads have a cluster outside 0..{n_clusters - 1}")
    empty = sorted(set(range(n_clusters)) - set(values[~outside].astype(int)))
    if empty:
        problems.append(f"cluster(s) {empty} have no lead")
    return problems


def persona_problems(personas: dict, labels: np.ndarray) -> list[str]:
    """One persona per cluster with its exact size, unique names, ranks by conversion rate, and
    percentages (cluster shares, every mix, lead sources) that add up to 100."""
    problems = []
    entries = personas["personas"]
    sizes = np.bincount(np.asarray(labels, dtype=np.int64))
    ids = [p["cluster_id"] for p in entries]
    if sorted(ids) != list(range(len(sizes))):
        problems.append(f"personas cover clusters {sorted(ids)}, the labels 0..{len(sizes) - 1}")
    for persona in entries:
        cluster = persona["cluster_id"]
        expected = int(sizes[cluster]) if 0 <= cluster < len(sizes) else 0
        if persona["cluster_size"] != expected or persona["conversion_metrics"]["total_records"] != expected:
            problems.append(f"persona of cluster {cluster}: size {persona['cluster_size']}, the cluster has {expected}")
    names = [p["persona_name"] for p in entries]
    if len(set(names)) != len(names):
        problems.append(f"persona names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    ranked = sorted(entries, key=lambda p: p["rank"])
    if [p["rank"] for p in ranked] != list(range(1, len(entries) + 1)):
        problems.append("ranks are not 1..n")
    rates = [p["conversion_metrics"]["conversion_rate"] for p in ranked]
    if any(a < b for a, b in zip(rates, rates[1:])):
        problems.append(f"ranks do not follow conversion rates: {rates}")
    problems += _adds_up("cluster_percentage over personas", [p["cluster_percentage"] for p in entries])
    for persona in entries:
        where = f"persona of cluster {persona['cluster_id']}"
        mixes = {**persona["demographics"], **persona["professional"]}
        for key, mix in mixes.items():
            problems += _adds_up(f"{where}: {key}", list(mix.values()))
        problems += _adds_up(f"{where}: lead sources", [s["percentage"] for s in persona["acquisition"]["lead_sources"]])
    return problems


def tier_problems(personas: dict, settings: LeadsSettings) -> list[str]:
    """Each persona's tier is the one its rate falls in; a small cluster has no tier (and is small)."""
    problems = []
    for persona in personas["personas"]:
        metrics = persona["conversion_metrics"]
        size, tier = persona["cluster_size"], metrics["value_tier"]
        small = size < settings.min_cluster_size
        expected = None if small else settings.value_tiers.tier_of(metrics["conversion_rate"])
        if tier != expected:
            problems.append(
                f"persona of cluster {persona['cluster_id']}: tier {tier}, expected {expected} "
                f"(rate {metrics['conversion_rate']:.4f}, {size} leads, minimum {settings.min_cluster_size})"
            )
    return problems


def _adds_up(what: str, percentages: list[float]) -> list[str]:
    total = float(np.sum(percentages))
    if percentages and abs(total - 100.0) > PERCENT_TOLERANCE:
        return [f"{what} add up to {total:.2f}%, not 100%"]
    return []

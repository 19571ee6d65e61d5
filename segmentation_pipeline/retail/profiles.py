"""LLM-ready cluster profiles: one plain dict per clustering result, written as JSON, YAML and a prompt.

A profile describes every cluster in the original feature units (days, currency, counts) so that a
person or a language model can name and act on the segments without seeing the scaled model space.
Every value is a plain JSON type, rounded (see `json_ready`), so the JSON and YAML files load back
equal and diffs between runs stay readable.

Schema (keys in this order):

    metadata: {method, timestamp, n_clusters, n_samples, parameters}
    metrics: result.metrics
    features_used: [...]
    clusters:
      cluster_<i>:
        cluster_id, size, percentage,
        cluster_center: {feature: mean of the members}
        feature_statistics: {feature: {mean, median, std, min, max, q25, q75}}
        rfm_segment_mix: {segment: share of the members}        (shares sum to 1, largest first)
        top_departments: [{department, revenue_share}, ...]     (only with dept_value:* columns)
        ...result.cluster_extras[i]                             (membership_stats, probability_stats, ...)
    ...result.root_extras                                       (GMM mixture_weights, uncertainty_metrics)

`cluster_center` is the mean rather than the median because it is what the centroid methods optimise;
the median is in `feature_statistics`. `std` is the sample standard deviation, so it is null for a
one-member cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segmentation_pipeline.clustering.assignments import table_positions
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.jsonable import json_ready
from segmentation_pipeline.retail.features import DEPT_VALUE_PREFIX
from segmentation_pipeline.yaml_data import SAFE_DUMPER

SHARE_DECIMALS = 4
PERCENTAGE_DECIMALS = 2
PERCENTAGE_TOLERANCE = 0.1
SHARE_TOLERANCE = 0.01
TOP_DEPARTMENTS = 5
SEGMENT_COLUMN = "segment"

ROOT_KEYS = ("metadata", "metrics", "features_used", "clusters")
METADATA_KEYS = ("method", "timestamp", "n_clusters", "n_samples", "parameters")
CLUSTER_KEYS = (
    "cluster_id",
    "size",
    "percentage",
    "cluster_center",
    "feature_statistics",
    "rfm_segment_mix",
)
STATISTICS = ("mean", "median", "std", "min", "max", "q25", "q75")

FEATURE_DESCRIPTIONS = {
    "recency_days": "days since the customer's last purchase (lower = more recent)",
    "frequency": "number of distinct purchase orders",
    "monetary": "gross purchase revenue, in the store's currency",
    "monetary_net": "purchase revenue net of returns, in the store's currency",
    "avg_order_value": "average revenue per order, in the store's currency",
    "orders_per_month": "orders per month of tenure",
    "tenure_months": "length of the customer relationship, in months",
    "return_rate": "returned value / gross purchase value, 0..1",
    "returns_count": "number of returned lines",
    "r_score": "recency quintile score 1..5 (5 = most recent)",
    "f_score": "frequency quintile score 1..5 (5 = most frequent)",
    "m_score": "monetary quintile score 1..5 (5 = highest spend)",
}


def rounded_shares(counts: np.ndarray, decimals: int, scale: float = 1.0) -> list[float]:
    """Shares of the counts' total times `scale`, rounded by largest remainder so they add up to `scale`."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return [0.0] * len(counts)
    units = int(round(scale * 10**decimals))
    exact = counts / total * units
    floored = np.floor(exact).astype(np.int64)
    missing = units - int(floored.sum())
    # Stable sort on the negated remainder: ties go to the earlier entry, deterministically.
    order = np.argsort(-(exact - floored), kind="stable")
    floored[order[:missing]] += 1
    return [round(int(unit) / 10**decimals, decimals) for unit in floored]


PERSONA_NUMBERS = ("value", "value_tier", "high_returns", "absorbed_noise", "name_basis")


def build_profile(
    result: Any, features: pd.DataFrame, timestamp: str | None = None, personas: dict | None = None
) -> dict:
    """Describe every cluster of `result` with statistics of `features` (joined on customer_id).

    `timestamp` defaults to now (UTC); pass one to make the profile reproducible. `personas`
    (`personas.build_personas` of the same result) adds every number the rule-based personas use,
    so a language model names the clusters from the same facts: per cluster `persona` (rule-based
    name, value tier, revenue share, value index, return rate, absorbed noise, why each name word
    was chosen) and `top_countries`; at the root the value tier thresholds and base return rate.
    """
    labels = np.asarray(result.labels).astype(np.int64)
    n_clusters = int(result.n_clusters)
    features_used = list(result.features_used)
    aligned = _align_features(result, features, features_used)
    if len(labels) != len(aligned):
        raise ValueError(
            f"{result.method}: {len(labels)} labels for {len(aligned)} customer ids"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_clusters):
        raise ValueError(f"{result.method}: labels must lie in 0..{n_clusters - 1}")

    clusters_index = pd.RangeIndex(n_clusters)
    sizes = np.bincount(labels, minlength=n_clusters)
    percentages = rounded_shares(sizes, PERCENTAGE_DECIMALS, scale=100)
    statistics = _feature_statistics(aligned[features_used], labels, clusters_index)
    segment_mix = _segment_mix(aligned[SEGMENT_COLUMN], labels, clusters_index)
    departments = _top_departments(aligned, labels, clusters_index)

    cluster_extras = getattr(result, "cluster_extras", None) or {}
    clusters = {}
    for cluster_id in clusters_index:
        feature_statistics = {
            feature: {stat: statistics[stat].at[cluster_id, feature] for stat in STATISTICS}
            for feature in features_used
        }
        cluster = {
            "cluster_id": int(cluster_id),
            "size": int(sizes[cluster_id]),
            "percentage": percentages[cluster_id],
            "cluster_center": {
                feature: stats["mean"] for feature, stats in feature_statistics.items()
            },
            "feature_statistics": feature_statistics,
            "rfm_segment_mix": segment_mix[cluster_id],
        }
        if departments is not None:
            cluster["top_departments"] = departments[cluster_id]
        _merge_extras(cluster, cluster_extras.get(cluster_id, {}), f"cluster {cluster_id}")
        if personas is not None:
            cluster |= _persona_numbers(personas, cluster_id)
        clusters[f"cluster_{cluster_id}"] = cluster

    profile = {
        "metadata": {
            "method": result.method,
            "timestamp": timestamp
            or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "n_clusters": n_clusters,
            "n_samples": int(len(labels)),
            "parameters": dict(result.params),
        },
        "metrics": dict(result.metrics),
        "features_used": features_used,
        "clusters": clusters,
    }
    _merge_extras(profile, getattr(result, "root_extras", None) or {}, "profile root")
    if personas is not None:
        profile["value_tier_thresholds"] = personas["value_tier_thresholds"]
        profile["base_return_rate"] = personas.get("base_return_rate")
    return json_ready(profile)


def _persona_numbers(personas: dict, cluster_id: int) -> dict:
    """The rule-based persona's numbers for one cluster: {"persona": {...}, "top_countries": [...]}."""
    persona = next(p for p in personas["personas"] if p["cluster_id"] == cluster_id)
    numbers = {"persona": {"name": persona["persona_name"],
                           **{key: persona[key] for key in PERSONA_NUMBERS if key in persona}}}
    if "geography" in persona:
        numbers["top_countries"] = persona["geography"]["top_countries"]
    return numbers


def profile_columns(available: Sequence[str], features_used: Sequence[str]) -> list[str]:
    """The columns of a customer table that profiles read, in table order: ids, segment, the features
    used and the department spend."""
    wanted = {"customer_id", SEGMENT_COLUMN, *features_used}
    return [column for column in available if column in wanted or str(column).startswith(DEPT_VALUE_PREFIX)]


def _align_features(result: Any, features: pd.DataFrame, features_used: list[str]) -> pd.DataFrame:
    """The columns profiles read (ids, segment, the features used, department spend) of `features`, in
    the order of result.customer_ids; ids compared as strings."""
    table = "customer feature table"
    required = ["customer_id", SEGMENT_COLUMN, *features_used]
    missing_columns = [column for column in required if column not in features.columns]
    if missing_columns:
        raise InputDataError(f"{table}: missing column(s) {', '.join(missing_columns)}")
    non_numeric = [c for c in features_used if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise InputDataError(f"{table}: column(s) {', '.join(non_numeric)} must be numeric")
    positions = table_positions(result.customer_ids, features["customer_id"], table)
    columns = profile_columns(features.columns, features_used)
    aligned = features[columns] if positions is None else features[columns].take(positions)
    return aligned.reset_index(drop=True)


def _feature_statistics(
    values: pd.DataFrame, labels: np.ndarray, clusters_index: pd.Index
) -> dict[str, pd.DataFrame]:
    """One (cluster x feature) frame per statistic; empty clusters get NaN rows."""
    grouped = values.astype(float).groupby(labels)
    frames = {
        "mean": grouped.mean(),
        "median": grouped.median(),
        "std": grouped.std(),
        "min": grouped.min(),
        "max": grouped.max(),
        "q25": grouped.quantile(0.25),
        "q75": grouped.quantile(0.75),
    }
    return {name: frame.reindex(clusters_index) for name, frame in frames.items()}


def _segment_mix(
    segments: pd.Series, labels: np.ndarray, clusters_index: pd.Index
) -> dict[int, dict[str, float]]:
    """Share of each named RFM segment among the members, largest first (ties by name)."""
    counts = pd.crosstab(labels, segments.to_numpy()).reindex(clusters_index, fill_value=0)
    mixes = {}
    for cluster_id, row in counts.iterrows():
        row = row[row > 0]
        row = row.sort_index().sort_values(ascending=False, kind="stable")
        shares = rounded_shares(row.to_numpy(), SHARE_DECIMALS)
        mixes[cluster_id] = dict(zip(map(str, row.index), shares))
    return mixes


def _top_departments(
    aligned: pd.DataFrame, labels: np.ndarray, clusters_index: pd.Index
) -> dict[int, list[dict]] | None:
    """Top departments by share of the members' department revenue; None without dept_value:* columns."""
    columns = [c for c in aligned.columns if str(c).startswith(DEPT_VALUE_PREFIX)]
    if not columns:
        return None
    revenue = aligned[columns].astype(float).fillna(0.0).groupby(labels).sum()
    revenue = revenue.reindex(clusters_index, fill_value=0.0)
    revenue.columns = [c[len(DEPT_VALUE_PREFIX) :] for c in columns]
    top = {}
    for cluster_id, row in revenue.iterrows():
        total = row.sum()
        if total <= 0:
            top[cluster_id] = []
            continue
        row = row.sort_index().sort_values(ascending=False, kind="stable").head(TOP_DEPARTMENTS)
        top[cluster_id] = [
            {"department": department, "revenue_share": value / total}
            for department, value in row.items()
        ]
    return top


def _merge_extras(target: dict, extras: dict, where: str) -> None:
    """Add method extras without letting them silently overwrite the schema's own keys."""
    clashes = sorted(set(map(str, extras)) & set(target))
    if clashes:
        raise ValueError(f"{where}: method extras would overwrite {clashes}")
    target.update({str(key): value for key, value in extras.items()})


def validate_profile(profile: Any) -> list[str]:
    """Problems that make a profile unusable; an empty list means it is sound."""
    if not isinstance(profile, dict):
        return ["profile is not a mapping"]
    problems = [f"missing key '{key}'" for key in ROOT_KEYS if key not in profile]
    metadata = profile.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        problems.append("metadata is not a mapping")
    problems += [f"metadata: missing key '{key}'" for key in METADATA_KEYS if key not in metadata]
    clusters = profile.get("clusters")
    if not isinstance(clusters, dict):
        return problems + ["clusters is not a mapping"]

    n_clusters = metadata.get("n_clusters")
    if isinstance(n_clusters, int) and n_clusters != len(clusters):
        problems.append(f"metadata says {n_clusters} clusters, profile has {len(clusters)}")
    sizes, percentages = [], []
    for name, cluster in clusters.items():
        if not isinstance(cluster, dict):
            problems.append(f"{name}: not a mapping")
            continue
        problems += [f"{name}: missing key '{key}'" for key in CLUSTER_KEYS if key not in cluster]
        size = cluster.get("size")
        if not _is_number(size) or size < 0 or size != int(size):
            problems.append(f"{name}: size {size!r} is not a non-negative integer")
        else:
            sizes.append(size)
        percentage = cluster.get("percentage")
        if not _is_number(percentage) or percentage < 0:
            problems.append(f"{name}: percentage {percentage!r} is not a non-negative number")
        else:
            percentages.append(percentage)
        mix = cluster.get("rfm_segment_mix")
        if isinstance(mix, dict) and mix and size:
            total = sum(share for share in mix.values() if _is_number(share))
            if abs(total - 1) > SHARE_TOLERANCE:
                problems.append(f"{name}: rfm_segment_mix shares sum to {total:.4f}, not 1")

    n_samples = metadata.get("n_samples")
    if sizes and len(sizes) == len(clusters) and sum(sizes) != n_samples:
        problems.append(f"cluster sizes sum to {sum(sizes)}, n_samples is {n_samples}")
    if percentages and len(percentages) == len(clusters):
        total = sum(percentages)
        if abs(total - 100) > PERCENTAGE_TOLERANCE:
            problems.append(f"cluster percentages sum to {total:.2f}, not 100")
    try:
        json.dumps(profile, allow_nan=False)
    except (TypeError, ValueError) as error:
        problems.append(f"profile is not plain JSON: {error}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def profile_yaml(profile: dict) -> str:
    """YAML in schema order; the safe dumper quotes strings such as 'yes' or '2024-01-01' so they stay strings.
    Lines are not folded, so a persona name reads (and is searched) as one piece."""
    return yaml.dump(profile, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=1_000_000)


def answer_schema(profile: dict) -> dict:
    """JSON schema the language model's answer must follow: one entry per cluster of the profile."""
    cluster_ids = [cluster["cluster_id"] for cluster in profile["clusters"].values()]
    text_list = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    return {
        "type": "object",
        "required": ["clusters"],
        "additionalProperties": False,
        "properties": {
            "clusters": {
                "type": "array",
                "minItems": len(cluster_ids),
                "maxItems": len(cluster_ids),
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "cluster_id",
                        "segment_name",
                        "persona",
                        "key_characteristics",
                        "marketing_strategies",
                        "risks",
                    ],
                    "properties": {
                        "cluster_id": {"type": "integer", "enum": cluster_ids},
                        "segment_name": {"type": "string", "maxLength": 40},
                        "persona": {"type": "string"},
                        "key_characteristics": text_list,
                        "marketing_strategies": text_list,
                        "risks": text_list,
                    },
                },
            },
            "overall_notes": {"type": "string"},
        },
    }


def llm_prompt(profile: dict) -> str:
    """A self-contained prompt asking for segment names, personas, strategies and risks per cluster."""
    metadata = profile["metadata"]
    feature_lines = "\n".join(
        f"  - `{feature}`: {FEATURE_DESCRIPTIONS.get(feature, 'as named, in original units')}"
        for feature in profile["features_used"]
    )
    schema = json.dumps(answer_schema(profile), indent=2)
    return f"""# Customer segment interpretation ({metadata["method"]})

You are a senior retail marketing analyst. A clustering method (`{metadata["method"]}`) split \
{metadata["n_samples"]} customers of an online retailer into {metadata["n_clusters"]} clusters \
using their purchase history. Turn each cluster into a segment the marketing team can act on.

## How to read the profile

- RFM = Recency (how recently a customer bought), Frequency (how often) and Monetary value (how much).
- Features used for clustering, in original units:
{feature_lines}
- `size` is the number of customers in the cluster; `percentage` is its share of all customers (0..100).
- `cluster_center` is the members' mean; `feature_statistics` adds median, standard deviation,
  min, max and quartiles (q25, q75). A null standard deviation means a one-member cluster.
- `rfm_segment_mix` gives the share (0..1) of members in each classic RFM segment (champions,
  loyal_customers, at_risk, hibernating, ...), derived from 1..5 quintile scores where 5 is best.
- `top_departments`, when present, gives the departments with the largest share (0..1) of the
  members' purchase revenue.
- `persona`, when present, is the rule-based persona of the cluster: its `name`, `value_tier`,
  `value` (revenue_share 0..1 = the cluster's share of all revenue; value_index = revenue share /
  customer share, compared with `value_tier_thresholds` at the root; return_rate 0..1), whether its
  return rate is well above `base_return_rate` (`high_returns`), how many of its customers a density
  method marked as noise (`absorbed_noise`), and why each word of the name was chosen (`name_basis`).
  Use the same numbers; say so when your reading differs from the rule-based name.
- `top_countries`, when present: [{{name, share 0..1 of the members, lift vs all customers}}].
- `metadata.parameters.preparation` describes the model's scaled space: `means` and `scales` are
  of the transformed values (keys `log1p(<feature>)` are in log1p space), not customer averages.
- Method extras, when present: `membership_stats` (fuzzy membership degree 0..1),
  `probability_stats` and `mixture_weight` (Gaussian mixture assignment probability and weight),
  `encoded_space_stats` (distances in the autoencoder's latent space). Low memberships or
  probabilities mean the cluster blends into others.
- `metrics` rate the clustering as a whole (silhouette: higher is better, -1..1;
  davies_bouldin: lower is better; stability_ari_*: agreement across re-fits, 1 = identical).

## Profile

```yaml
{profile_yaml(profile)}```

## Task

For every cluster give:
1. `segment_name`: a short, memorable name (2-4 words) that is distinct from the other clusters.
2. `persona`: 2-3 sentences describing a typical customer of the segment.
3. `key_characteristics`: the numbers that set the cluster apart (quote them, with units).
4. `marketing_strategies`: 2-4 concrete actions (channel, offer, timing) suited to the segment.
5. `risks`: what could go wrong with this segment (churn, returns, margin, over-contacting).

Base every statement on the profile; do not invent data that is not in it. Compare clusters with
each other: a value is only "high" relative to the other clusters.

## Answer format

Answer with a single JSON object and nothing else (no prose, no code fence), valid against this
JSON schema, with exactly one entry per `cluster_id`:

```json
{schema}
```
"""


def profile_documents(profile: dict) -> dict[str, str]:
    """The profile as JSON and YAML (equal content) and the ready-to-send LLM prompt, by kind
    ("json", "yaml", "prompt"); where they are written is the caller's (the output layout's) business."""
    return {
        "json": json.dumps(profile, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        "yaml": profile_yaml(profile),
        "prompt": llm_prompt(profile),
    }


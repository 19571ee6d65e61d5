"""Compare clustering methods side by side and recommend the one to trust.

Recommendation rule (RECOMMENDATION_RULE): among the methods whose stability_ari_mean is at least
STABILITY_THRESHOLD (or all methods when none is), pick the highest silhouette; ties go to the higher
stability_ari_mean, then the lower Davies-Bouldin index, then the method name. A cluster structure
that changes when the model is re-fitted cannot be explained to a marketing team, so stability gates
the choice before separation ranks it. Missing metrics rank last.

Ground truth (the synthetic personas) is reported as ARI / NMI against the labels but never used to
recommend: real customer data has no ground truth, and the rule must behave the same on both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from segmentation_pipeline.jsonable import json_ready

STABILITY_THRESHOLD = 0.75
RECOMMENDATION_RULE = (
    f"Among methods with stability_ari_mean >= {STABILITY_THRESHOLD} (all methods if none), "
    "the highest silhouette; ties: higher stability_ari_mean, then lower davies_bouldin, "
    "then method name."
)
STANDARD_METRICS = (
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "stability_ari_mean",
    "stability_ari_min",
    "fit_seconds",
)
TIE_BREAKERS = ("higher stability", "lower Davies-Bouldin", "method name")


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per method: method, n_clusters, metrics, [ari_vs_truth, nmi_vs_truth]
    pairwise_ari: pd.DataFrame  # methods x methods, 1.0 on the diagonal
    recommended: str
    recommendation_reason: str


def compare_methods(results: list, truth: pd.Series | None = None) -> Comparison:
    """Metrics table, pairwise agreement and recommended method for clustering results.

    `truth` maps customer_id -> true persona; agreement with it is computed on the customers
    present in both.
    """
    if not results:
        raise ValueError("compare_methods needs at least one clustering result")
    methods = [str(result.method) for result in results]
    if len(set(methods)) != len(methods):
        raise ValueError(f"method names must be unique, got {methods}")
    labelings = {
        method: pd.Series(
            np.asarray(result.labels), index=np.asarray(result.customer_ids).astype(str)
        )
        for method, result in zip(methods, results)
    }
    table = _metrics_table(results, methods)
    if truth is not None:
        truth = pd.Series(truth.to_numpy(), index=truth.index.astype(str))
        agreement = [_agreement(labelings[method], truth) for method in methods]
        table["ari_vs_truth"] = [ari for ari, _ in agreement]
        table["nmi_vs_truth"] = [nmi for _, nmi in agreement]
    recommended, reason = _recommend(table)
    return Comparison(
        table=table,
        pairwise_ari=_pairwise_ari(labelings),
        recommended=recommended,
        recommendation_reason=reason,
    )


def _metrics_table(results: list, methods: list[str]) -> pd.DataFrame:
    """Standard metrics first, then every other numeric metric any method reports (NaN elsewhere)."""
    rows = [
        {
            name: float(value)
            for name, value in result.metrics.items()
            if _is_scalar_number(value)
        }
        for result in results
    ]
    extra = sorted({name for row in rows for name in row} - set(STANDARD_METRICS))
    table = pd.DataFrame(rows, columns=[*STANDARD_METRICS, *extra], dtype=float)
    table.insert(0, "n_clusters", [int(result.n_clusters) for result in results])
    table.insert(0, "method", methods)
    return table


def _is_scalar_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _agreement(labels: pd.Series, truth: pd.Series) -> tuple[float, float]:
    """(ARI, NMI) of labels against the truth on shared customers; NaN when none are shared."""
    joined = pd.concat([labels, truth], axis=1, join="inner").dropna()
    if joined.empty:
        return math.nan, math.nan
    predicted, actual = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].astype(str).to_numpy()
    return (
        float(adjusted_rand_score(actual, predicted)),
        float(normalized_mutual_info_score(actual, predicted)),
    )


def _pairwise_ari(labelings: dict[str, pd.Series]) -> pd.DataFrame:
    """Symmetric ARI between every pair of methods on the customers both labelled."""
    methods = list(labelings)
    matrix = pd.DataFrame(np.eye(len(methods)), index=methods, columns=methods)
    for i, first in enumerate(methods):
        for second in methods[i + 1 :]:
            joined = pd.concat([labelings[first], labelings[second]], axis=1, join="inner")
            ari = (
                float(adjusted_rand_score(joined.iloc[:, 0], joined.iloc[:, 1]))
                if len(joined)
                else math.nan
            )
            matrix.loc[first, second] = matrix.loc[second, first] = ari
    return matrix


def _rank_key(row: pd.Series) -> tuple:
    """Sort key of the recommendation rule: smaller is better, missing metrics last."""

    def better_high(value: float) -> float:
        return -value if math.isfinite(value) else math.inf

    def better_low(value: float) -> float:
        return value if math.isfinite(value) else math.inf

    return (
        better_high(row["silhouette"]),
        better_high(row["stability_ari_mean"]),
        better_low(row["davies_bouldin"]),
        row["method"],
    )


def _recommend(table: pd.DataFrame) -> tuple[str, str]:
    """Apply RECOMMENDATION_RULE and explain the choice with the numbers behind it."""
    stable = table[table["stability_ari_mean"] >= STABILITY_THRESHOLD]
    pool = stable if len(stable) else table
    ranked = sorted((row for _, row in pool.iterrows()), key=_rank_key)
    best = ranked[0]
    numbers = (
        f"silhouette {_fmt(best['silhouette'])}, stability ARI mean "
        f"{_fmt(best['stability_ari_mean'])}, Davies-Bouldin {_fmt(best['davies_bouldin'])}"
    )
    if len(table) == 1:
        scope = "it is the only method compared"
    elif len(stable):
        scope = (
            f"highest silhouette among the {len(stable)} of {len(table)} methods with "
            f"stability ARI mean >= {STABILITY_THRESHOLD}"
        )
    else:
        scope = (
            f"highest silhouette among all {len(table)} methods, since none reaches "
            f"stability ARI mean >= {STABILITY_THRESHOLD}"
        )
    reason = f"{best['method']} is recommended: {scope} ({numbers})"
    best_key = _rank_key(best)
    if len(ranked) > 1 and _rank_key(ranked[1])[0] == best_key[0]:
        runner_up = ranked[1]
        decided_by = next(
            breaker
            for breaker, mine, theirs in zip(TIE_BREAKERS, best_key[1:], _rank_key(runner_up)[1:])
            if mine != theirs
        )
        reason += f"; silhouette tie with {runner_up['method']} broken by {decided_by}"
    excluded = table.drop(pool.index)
    if len(excluded):
        rival = min((row for _, row in excluded.iterrows()), key=_rank_key)
        if _rank_key(rival)[0] < best_key[0]:
            reason += (
                f"; {rival['method']} has a higher silhouette ({_fmt(rival['silhouette'])}) "
                f"but is unstable (stability ARI mean {_fmt(rival['stability_ari_mean'])})"
            )
    return str(best["method"]), reason + "."


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def comparison_to_dict(comparison: Comparison, skipped: dict[str, str] | None = None) -> dict:
    """Plain-JSON form of a comparison, for files and run metadata; `skipped` names the methods that
    did not run, with the reason."""
    return json_ready(
        {
            "recommended": comparison.recommended,
            "recommendation_reason": comparison.recommendation_reason,
            "recommendation_rule": RECOMMENDATION_RULE,
            "stability_threshold": STABILITY_THRESHOLD,
            "methods": comparison.table.to_dict(orient="records"),
            "pairwise_ari": comparison.pairwise_ari.to_dict(orient="index"),
            "skipped": dict(skipped or {}),
        }
    )

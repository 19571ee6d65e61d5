"""Compare clustering runs (method x feature set) side by side and recommend the one to trust.

A run is one method fitted on one feature set ("kmeans/behaviour_mix"). Silhouettes measured in
each run's own feature space are not comparable across feature sets (a space without the purchase
mix has fewer ways for customers to differ), so every run is also scored in one shared space:
`silhouette_shared`, the silhouette of its labels on the prepared matrix of the widest run (the
behaviour + purchase-mix columns when any run used them), on a fixed sample of SHARED_SAMPLE_SIZE
customers. A run that ignores how customers buy is judged on everything known about them.

Recommendation rule (RECOMMENDATION_RULE): among the runs whose stability_ari_mean is at least
STABILITY_THRESHOLD (or all runs when none is), pick the highest silhouette_shared; ties go to the
higher stability_ari_mean, then the lower Davies-Bouldin index, then the run name. A cluster
structure that changes when the model is re-fitted cannot be explained to a marketing team, so
stability gates the choice before separation ranks it. Missing metrics rank last. The same rule
restricted to one method's runs gives that method's preferred feature set, the run whose personas
and charts stand for the method.

Ground truth (the synthetic personas) is reported as ARI / NMI against the labels but never used to
recommend: real customer data has no ground truth, and the rule must behave the same on both. The
agreement between runs and with the truth is measured on a fixed sample of AGREEMENT_SAMPLE_SIZE
customers (everyone below that), so comparing runs costs the same at any number of customers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from segmentation_pipeline.clustering.base import UnsupportedDataError
from segmentation_pipeline.clustering.metrics import SilhouetteScorer
from segmentation_pipeline.clustering.runner import run_feature_sets
from segmentation_pipeline.clustering.selection import sample_rows
from segmentation_pipeline.jsonable import json_ready

STABILITY_THRESHOLD = 0.80
SHARED_SAMPLE_SIZE = 4_000
SHARED_SAMPLE_SEED = 0
AGREEMENT_SAMPLE_SIZE = 100_000  # customers the runs' agreement (pairwise, and with the truth) is measured on
RECOMMENDATION_RULE = (
    f"Among runs (method x feature set) with stability_ari_mean >= {STABILITY_THRESHOLD} (all runs if "
    "none), the highest silhouette_shared (silhouette in the widest run's feature space, so feature "
    "sets are judged alike); ties: higher stability_ari_mean, then lower davies_bouldin, then run name."
)
STANDARD_METRICS = (
    "silhouette",
    "silhouette_shared",
    "davies_bouldin",
    "calinski_harabasz",
    "stability_ari_mean",
    "stability_ari_min",
    "noise_share",
    "fit_seconds",
)
TIE_BREAKERS = ("higher stability", "lower Davies-Bouldin", "run name")
DEFAULT_FEATURE_SET = "behaviour"


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per run: run, method, feature_set, n_clusters, STANDARD_METRICS,
    # [ari_vs_truth, nmi_vs_truth]; noise_share is NaN for methods without noise
    method_metrics: dict[str, dict[str, float]]  # run -> numeric metrics only that method reports
    pairwise_ari: pd.DataFrame  # runs x runs, 1.0 on the diagonal
    recommended: str  # method of the recommended run
    recommended_feature_set: str
    preferred_feature_sets: dict[str, str]  # method -> feature set of its best run by the same rule
    recommendation_reason: str
    shared_space: str  # which run's feature space silhouette_shared was measured in

    @property
    def recommended_run(self) -> str:
        return run_label(self.recommended, self.recommended_feature_set)


def run_label(method: str, feature_set: str) -> str:
    return f"{method}/{feature_set}"


def compare_methods(results: list, truth: pd.Series | None = None) -> Comparison:
    """Metrics table, pairwise agreement and recommended run for clustering results.

    `truth` maps customer_id -> true persona; agreement with it is computed on the customers
    present in both.
    """
    if not results:
        raise ValueError("compare_methods needs at least one clustering result")
    runs = [run_label(str(r.method), getattr(r, "feature_set", DEFAULT_FEATURE_SET)) for r in results]
    if len(set(runs)) != len(runs):
        raise ValueError(f"runs (method/feature set) must be unique, got {runs}")
    ids = _common_customers(results)
    if ids is None:  # runs of different customer tables: agreement on the customers two runs share
        labelings = {
            run: pd.Series(np.asarray(result.labels), index=np.asarray(result.customer_ids).astype(str))
            for run, result in zip(runs, results)
        }
    else:  # the usual case: one customer table, compared on a fixed sample of it
        rows = sample_rows(len(ids), AGREEMENT_SAMPLE_SIZE, SHARED_SAMPLE_SEED)
        labelings = {run: pd.Series(np.asarray(r.labels)[rows], index=ids[rows]) for run, r in zip(runs, results)}
    shared, space = _shared_silhouettes(results, runs, ids)
    table, method_metrics = _metrics_table(results, runs, shared)
    if truth is not None:
        # Personas as numbers, found once: scoring text labels sorts them again for every run.
        codes = pd.factorize(truth.to_numpy())[0]
        truth = pd.Series(np.where(codes >= 0, codes, np.nan), index=truth.index.astype(str))
        if ids is not None:
            truth = truth.reindex(labelings[runs[0]].index)  # aligned once, for every run
        agreement = [_agreement(labelings[run], truth) for run in runs]
        table["ari_vs_truth"] = [ari for ari, _ in agreement]
        table["nmi_vs_truth"] = [nmi for _, nmi in agreement]
    best, reason = _recommend(table)
    preferred = {
        method: str(_recommend(table[table["method"] == method])[0]["feature_set"])
        for method in dict.fromkeys(table["method"])
    }
    return Comparison(
        table=table,
        method_metrics=method_metrics,
        pairwise_ari=_pairwise_ari(labelings),
        recommended=str(best["method"]),
        recommended_feature_set=str(best["feature_set"]),
        preferred_feature_sets=preferred,
        recommendation_reason=reason,
        shared_space=space,
    )


def _common_customers(results: list) -> np.ndarray | None:
    """The customer ids (as text) when every run labels the same customers in the same order, else None."""
    first = np.asarray(results[0].customer_ids)
    for result in results[1:]:
        other = np.asarray(result.customer_ids)
        if other is not first and not (len(other) == len(first) and np.array_equal(other, first)):
            return None
    return first.astype(str)


def _shared_silhouettes(results: list, runs: list[str], ids: np.ndarray | None) -> tuple[list[float | None], str]:
    """Silhouette of every run's labels in the widest run's prepared space (same customers, same
    order), or each run's own silhouette when the runs do not share customers or matrices."""
    own = [r.metrics.get("silhouette") for r in results]
    prepared = [getattr(r, "prepared", None) for r in results]
    if any(matrix is None for matrix in prepared):
        return own, "each run's own feature space (runs carry no prepared matrix)"
    widest = max(range(len(results)), key=lambda i: (prepared[i].shape[1], runs[i]))
    if ids is None:
        return own, "each run's own feature space (runs cover different customers)"
    rows = sample_rows(len(ids), SHARED_SAMPLE_SIZE, SHARED_SAMPLE_SEED)
    scorer = SilhouetteScorer(np.asarray(prepared[widest], dtype=float)[rows])
    scores = [scorer.score(np.asarray(r.labels)[rows]) for r in results]
    return scores, f"{runs[widest]} ({prepared[widest].shape[1]} prepared columns, {len(rows):,} customers)"


def _metrics_table(
    results: list, runs: list[str], shared: list[float | None]
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Standard metrics per run (NaN where a method has none); other numeric metrics per run."""
    numeric = [
        {name: float(value) for name, value in result.metrics.items() if _is_scalar_number(value)}
        for result in results
    ]
    rows = [
        {**{name: row.get(name) for name in STANDARD_METRICS}, "silhouette_shared": score}
        for row, score in zip(numeric, shared)
    ]
    table = pd.DataFrame(rows, columns=list(STANDARD_METRICS), dtype=float)
    table.insert(0, "n_clusters", [int(result.n_clusters) for result in results])
    table.insert(0, "feature_set", [run.split("/", 1)[1] for run in runs])
    table.insert(0, "method", [str(result.method) for result in results])
    table.insert(0, "run", runs)
    extras = {
        run: {name: value for name, value in row.items() if name not in STANDARD_METRICS}
        for run, row in zip(runs, numeric)
    }
    return table, extras


def _is_scalar_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _agreement(labels: pd.Series, truth: pd.Series) -> tuple[float, float]:
    """(ARI, NMI) of labels against the truth on shared customers; NaN when none are shared."""
    joined = pd.concat([labels, truth], axis=1, join="inner").dropna()
    if joined.empty:
        return math.nan, math.nan
    predicted, actual = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy()
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
        better_high(row["silhouette_shared"]),
        better_high(row["stability_ari_mean"]),
        better_low(row["davies_bouldin"]),
        row["run"],
    )


def _recommend(table: pd.DataFrame) -> tuple[pd.Series, str]:
    """Apply RECOMMENDATION_RULE; the best row and the choice explained with its numbers."""
    stable = table[table["stability_ari_mean"] >= STABILITY_THRESHOLD]
    pool = stable if len(stable) else table
    ranked = sorted((row for _, row in pool.iterrows()), key=_rank_key)
    best = ranked[0]
    numbers = (
        f"shared-space silhouette {_fmt(best['silhouette_shared'])}, stability ARI mean "
        f"{_fmt(best['stability_ari_mean'])}, Davies-Bouldin {_fmt(best['davies_bouldin'])}"
    )
    if len(table) == 1:
        scope = "it is the only run compared"
    elif len(stable):
        scope = (
            f"highest shared-space silhouette among the {len(stable)} of {len(table)} runs with "
            f"stability ARI mean >= {STABILITY_THRESHOLD}"
        )
    else:
        scope = (
            f"highest shared-space silhouette among all {len(table)} runs, since none reaches "
            f"stability ARI mean >= {STABILITY_THRESHOLD}"
        )
    reason = f"{best['run']} is recommended: {scope} ({numbers})"
    best_key = _rank_key(best)
    if len(ranked) > 1 and _rank_key(ranked[1])[0] == best_key[0]:
        runner_up = ranked[1]
        decided_by = next(
            breaker
            for breaker, mine, theirs in zip(TIE_BREAKERS, best_key[1:], _rank_key(runner_up)[1:])
            if mine != theirs
        )
        reason += f"; silhouette tie with {runner_up['run']} broken by {decided_by}"
    excluded = table.drop(pool.index)
    if len(excluded):
        rival = min((row for _, row in excluded.iterrows()), key=_rank_key)
        if _rank_key(rival)[0] < best_key[0]:
            reason += (
                f"; {rival['run']} has a higher shared-space silhouette ({_fmt(rival['silhouette_shared'])}) "
                f"but is unstable (stability ARI mean {_fmt(rival['stability_ari_mean'])})"
            )
    return best, reason + "."


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def comparison_to_dict(comparison: Comparison, skipped: dict[str, str] | None = None) -> dict:
    """Plain-JSON form of a comparison, for files and run metadata; `skipped` names the methods that
    did not run, with the reason."""
    return json_ready(
        {
            "recommended": comparison.recommended,
            "recommended_feature_set": comparison.recommended_feature_set,
            "recommended_run": comparison.recommended_run,
            "preferred_feature_sets": comparison.preferred_feature_sets,
            "recommendation_reason": comparison.recommendation_reason,
            "recommendation_rule": RECOMMENDATION_RULE,
            "stability_threshold": STABILITY_THRESHOLD,
            "shared_space": comparison.shared_space,
            "methods": comparison.table.to_dict(orient="records"),
            "method_metrics": comparison.method_metrics,
            "pairwise_ari": comparison.pairwise_ari.to_dict(orient="index"),
            "skipped": dict(skipped or {}),
        }
    )


@dataclass
class MethodRuns:
    """Every feature-set run of one method and the one that stands for it (the recommendation rule
    restricted to this method): its bundle, personas, profile and charts are the method's."""

    method: str
    runs: dict[str, Any]  # feature set -> ClusteringResult
    preferred: str
    unavailable: dict[str, str]  # feature set -> why this customer table cannot feed it

    @property
    def result(self):
        return self.runs[self.preferred]


def method_runs(method: str, features: pd.DataFrame, settings) -> MethodRuns:
    """Fit `method` on every configured feature set the table can feed and pick its preferred run.
    A feature set the data cannot support is left out with its reason; UnsupportedDataError when none
    is left (the method is then skipped)."""
    runs, unavailable = run_feature_sets(method, features, settings)
    if not runs:
        raise UnsupportedDataError("; ".join(f"{name}: {reason}" for name, reason in unavailable.items()))
    preferred = compare_methods(list(runs.values())).recommended_feature_set
    return MethodRuns(method, runs, preferred, unavailable)

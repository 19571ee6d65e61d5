"""A per-lead conversion score: logistic regression on the clustering features, Platt-calibrated.

The folds give two things at once. Each lead's out-of-fold decision value comes from a model that
never saw it, so ROC-AUC, PR-AUC and the Brier score measured on them are honest; and a sigmoid fitted
on those out-of-fold values calibrates the final model (fitted on every lead), which is what
scikit-learn's `CalibratedClassifierCV(method="sigmoid", ensemble=False)` does, without fitting the
folds twice. The out-of-fold probabilities are calibrated by a sigmoid fitted on the other folds only.

A score is only as good as its features: `score_feature_problems` proves that no feature is the
outcome, is named like a column known only after it, or separates the outcomes (almost) perfectly on
its own, which is what a column derived from the outcome does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from segmentation_pipeline.leads.settings import LeadsSettings, leaks_outcome

MAX_ITER = 500
# lbfgs stops when the gradient is this small: a third of the iterations of scikit-learn's 1e-4, for
# scores within 0.001 of ROC-AUC, PR-AUC and Brier of the tighter fit (measured on the synthetic and
# the bank marketing leads)
TOLERANCE = 1e-3
SEPARATION_AUC = 0.98  # a single feature ranking leads this well is derived from the outcome


@dataclass(frozen=True)
class ConversionScorer:
    """Calibrated probability of conversion from an encoded lead matrix."""

    model: LogisticRegression | None  # None when the leads hold a single outcome
    calibrator: LogisticRegression | None
    constant: float  # the overall rate, the score when there is no model

    def predict(self, encoded: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.full(len(encoded), self.constant)
        return _calibrated(self.calibrator, self.model.decision_function(encoded))


@dataclass(frozen=True)
class ConversionScore:
    scorer: ConversionScorer
    scores: np.ndarray  # the final model's score of each clean lead
    out_of_fold: np.ndarray  # calibrated score of each fitted lead from the model that did not see it
    metrics: dict  # roc_auc, pr_auc, brier, base_rate, folds, leads (fitted and measured on)


def fit_conversion_score(encoded: np.ndarray, is_sale: np.ndarray, settings: LeadsSettings) -> ConversionScore:
    """Fit the calibrated score with `settings.score_folds` stratified folds (seeded) on at most
    `settings.score_sample_size` leads, and score every lead."""
    everyone = encoded
    outcome = np.asarray(is_sale, dtype=bool)
    if len(outcome) > settings.score_sample_size:
        sample = np.sort(np.random.default_rng(settings.seed).permutation(len(outcome))[: settings.score_sample_size])
        encoded, outcome = encoded[sample], outcome[sample]
    encoded = np.asarray(encoded, dtype=np.float32)  # half the time of float64 per fit, same scores to 1e-6
    base_rate = float(outcome.mean()) if len(outcome) else 0.0
    minority = int(min(outcome.sum(), (~outcome).sum()))
    metrics = {"base_rate": base_rate, "folds": settings.score_folds, "leads": int(len(outcome))}
    if minority < settings.score_folds:
        scorer = ConversionScorer(None, None, base_rate)
        constant = scorer.predict(everyone)
        note = f"too few {'conversions' if outcome.sum() <= (~outcome).sum() else 'non-conversions'} to fit a score"
        return ConversionScore(scorer, constant, np.full(len(outcome), base_rate), {**metrics, "roc_auc": None, "pr_auc": None, "brier": None, "note": note})

    folds = list(StratifiedKFold(settings.score_folds, shuffle=True, random_state=settings.seed).split(encoded, outcome))
    decision = np.empty(len(outcome))
    with threadpool_limits(limits=1):  # small dense problems: threads only add contention on 2 cores
        for train, test in folds:
            decision[test] = _logistic().fit(encoded[train], outcome[train]).decision_function(encoded[test])
        out_of_fold = np.empty(len(outcome))
        for train, test in folds:
            out_of_fold[test] = _calibrated(_sigmoid(decision[train], outcome[train]), decision[test])
        model = _logistic().fit(encoded, outcome)
    scorer = ConversionScorer(model, _sigmoid(decision, outcome), base_rate)
    metrics.update(
        roc_auc=float(roc_auc_score(outcome, out_of_fold)),
        pr_auc=float(average_precision_score(outcome, out_of_fold)),
        brier=float(brier_score_loss(outcome, out_of_fold)),
        brier_base_rate=float(brier_score_loss(outcome, np.full(len(outcome), base_rate))),
    )
    return ConversionScore(scorer, scorer.predict(everyone), out_of_fold, metrics)


def score_feature_problems(
    feature_columns: list[str], clean: pd.DataFrame, settings: LeadsSettings
) -> list[str]:
    """Why a clean column used as a score (and clustering) feature cannot be trusted; [] when none."""
    problems = []
    outcome = clean["is_sale"].to_numpy(dtype=bool)
    outcome_column = settings.columns.is_sale
    for column in feature_columns:
        if column in ("is_sale", outcome_column):
            problems.append(f"feature '{column}' is the outcome itself")
            continue
        entry = leaks_outcome(column, settings.leakage_columns)
        if entry is not None:
            problems.append(f"feature '{column}' is named like '{entry}', a value known only after the outcome")
        auc = _separation(clean[column], outcome)
        if auc is not None and auc >= SEPARATION_AUC:
            problems.append(
                f"feature '{column}' alone separates conversions from non-conversions (AUC {auc:.3f}): "
                "it is derived from the outcome"
            )
    return problems


def _separation(values: pd.Series, outcome: np.ndarray) -> float | None:
    """How well the column alone ranks the outcomes: AUC of its per-value conversion rate (categories)
    or of its values (numbers), folded so that 0.5 is useless and 1 is perfect."""
    if outcome.all() or not outcome.any():
        return None
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        ranked = values.to_numpy(dtype=float)
        ranked = np.where(np.isnan(ranked), np.nanmedian(ranked) if np.isfinite(ranked).any() else 0.0, ranked)
    else:
        rates = pd.Series(outcome).groupby(values.astype("object").to_numpy()).transform("mean")
        ranked = rates.to_numpy(dtype=float)
    auc = roc_auc_score(outcome, ranked)
    return float(max(auc, 1 - auc))


def _logistic() -> LogisticRegression:
    return LogisticRegression(max_iter=MAX_ITER, tol=TOLERANCE)


def _sigmoid(decision: np.ndarray, outcome: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=1e6).fit(decision.reshape(-1, 1), outcome)


def _calibrated(calibrator: LogisticRegression, decision: np.ndarray) -> np.ndarray:
    return calibrator.predict_proba(decision.reshape(-1, 1))[:, 1]

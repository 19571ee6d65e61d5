"""The per-lead conversion score: honest out-of-fold metrics, calibration, and no outcome leakage."""

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.leads.cleaning import clean_leads
from segmentation_pipeline.leads.encoding import LeadEncoder
from segmentation_pipeline.leads.ingest import read_leads
from segmentation_pipeline.leads.scoring import fit_conversion_score, score_feature_problems
from segmentation_pipeline.leads.settings import LeadsSettings

SETTINGS = LeadsSettings(synthetic={"leads": 6000, "seed": 4})


@pytest.fixture(scope="module")
def clean_and_encoded():
    clean = clean_leads(read_leads(SETTINGS).raw, SETTINGS).clean
    encoder = LeadEncoder.fit(clean, SETTINGS)
    return clean, encoder, encoder.encode(clean)


def test_score_ranks_leads_and_is_calibrated(clean_and_encoded):
    clean, _, encoded = clean_and_encoded
    score = fit_conversion_score(encoded, clean["is_sale"].to_numpy(), SETTINGS)
    metrics = score.metrics
    assert metrics["roc_auc"] > 0.70 and metrics["pr_auc"] > metrics["base_rate"]
    assert metrics["brier"] < metrics["brier_base_rate"]
    assert score.out_of_fold.mean() == pytest.approx(metrics["base_rate"], abs=0.01)
    assert score.scores.min() >= 0 and score.scores.max() <= 1
    assert np.array_equal(fit_conversion_score(encoded, clean["is_sale"].to_numpy(), SETTINGS).scores, score.scores)


def test_a_large_set_is_fitted_on_a_sample_and_every_lead_scored(clean_and_encoded):
    clean, _, encoded = clean_and_encoded
    settings = SETTINGS.model_copy(update={"score_sample_size": 2000})
    score = fit_conversion_score(encoded, clean["is_sale"].to_numpy(), settings)
    assert score.metrics["leads"] == 2000 and len(score.out_of_fold) == 2000
    assert len(score.scores) == len(clean) and score.metrics["roc_auc"] > 0.65


def test_a_single_outcome_gives_the_base_rate_and_no_metrics(clean_and_encoded):
    _, _, encoded = clean_and_encoded
    score = fit_conversion_score(encoded, np.zeros(len(encoded), dtype=bool), SETTINGS)
    assert score.metrics["roc_auc"] is None and "too few conversions" in score.metrics["note"]
    assert set(score.scores) == {0.0}


def test_the_features_in_use_are_not_derived_from_the_outcome(clean_and_encoded):
    clean, encoder, _ = clean_and_encoded
    assert score_feature_problems(encoder.source_columns, clean, SETTINGS) == []


def test_outcome_derived_features_are_caught(clean_and_encoded):
    clean, encoder, _ = clean_and_encoded
    rng = np.random.default_rng(0)
    outcome = clean["is_sale"].to_numpy()
    leaky = clean.assign(
        stage=pd.Categorical(np.where(outcome, "Closed", "Open")),
        call_seconds=np.where(outcome, 600, 60) + rng.integers(0, 30, len(clean)),
        duration=rng.random(len(clean)),
    )
    problems = score_feature_problems(encoder.source_columns + ["stage", "call_seconds", "duration", "is_sale"], leaky, SETTINGS)
    assert any("'stage' alone separates" in p for p in problems)
    assert any("'call_seconds' alone separates" in p for p in problems)
    assert any("'duration' is named like 'duration'" in p for p in problems)
    assert any("'is_sale' is the outcome itself" in p for p in problems)
    assert len(problems) == 4

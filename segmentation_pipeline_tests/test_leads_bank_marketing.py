"""The leads core on a real export: the UCI Bank Marketing telemarketing leads (45,212 rows).

The file has no state, industry or lead source as such; the mapping below says which columns play
which role (the README of ../shared/datasets describes them) and which extra columns are features.
`duration` (the length of the last call) is only known after the outcome and must be refused.
"""

from pathlib import Path

import pytest
from pydantic import ValidationError

from segmentation_pipeline.leads import checks
from segmentation_pipeline.leads.pipeline import run_leads
from segmentation_pipeline.leads.scoring import score_feature_problems
from segmentation_pipeline.leads.settings import LeadsSettings

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BANK_LEADS = DATASETS / "bank_marketing_leads.csv"
BANK_COLUMNS = {
    "state": None, "industry": None, "job_title": "job", "education_level": "education", "age_range": "age",
    "years_experience": None, "gender": None, "lead_source": "contact", "is_sale": "y",
}
BANK_FEATURES = {
    "categorical_features": ["marital", "default", "housing", "loan", "poutcome"],
    "numeric_features": ["balance", "campaign", "pdays", "previous"],
}


def bank_settings(**overrides) -> LeadsSettings:
    return LeadsSettings(source="file", path=str(BANK_LEADS), columns=BANK_COLUMNS, **{**BANK_FEATURES, **overrides})


def test_duration_is_refused_as_a_feature():
    with pytest.raises(ValidationError, match=r"numeric_features: 'duration' looks like 'duration', a value known only after the outcome"):
        bank_settings(numeric_features=["balance", "duration"])


@pytest.mark.skipif(not BANK_LEADS.is_file(), reason=f"{BANK_LEADS} is not present")
def test_the_whole_core_runs_on_the_bank_marketing_leads():
    settings = bank_settings()
    run = run_leads(settings)
    raw, clean = run.input.raw, run.cleaned.clean
    assert len(raw) == 45_212 and len(clean) + len(run.cleaned.rejected) == len(raw)
    assert len(run.cleaned.rejected) == 0
    assert clean["is_sale"].sum() == 5_290
    assert set(clean["age_range"].cat.categories) <= {"<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "Unknown"}
    assert (clean["job_title"] == "Unknown").sum() == 288  # 'unknown' is a placeholder
    assert checks.split_problems(raw, run.cleaned) == []
    assert checks.conversion_problems(run.conversion, clean) == []
    assert checks.assignment_problems(run.clustered, len(raw), 4) == []
    assert checks.persona_problems(run.personas, run.segmentation.labels) == []
    assert checks.tier_problems(run.personas, settings) == []
    assert score_feature_problems(run.segmentation.encoder.source_columns, clean, settings) == []
    assert "duration" not in run.segmentation.encoder.source_columns
    metrics = run.score.metrics
    # without the call duration the score is useful but far from the leaky ~0.93 AUC
    assert 0.65 < metrics["roc_auc"] < 0.90 and metrics["brier"] < metrics["brier_base_rate"]
    names = [p["persona_name"] for p in run.personas["personas"]]
    assert len(set(names)) == 4 and not any("Unknown" in name for name in names)
    assert {p["geography"]["concentration"] for p in run.personas["personas"]} == {"Unknown"}  # no state column

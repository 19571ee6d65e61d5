"""The leads section: defaults that run, and features that leak the outcome refused by name."""

import pytest
from pydantic import ValidationError

from segmentation_pipeline.leads.settings import LeadsSettings, leaks_outcome, name_words


def test_defaults_need_no_file():
    settings = LeadsSettings()
    assert settings.source == "synthetic" and settings.k == 4
    assert settings.columns.mapped()["is_sale"] == "is_sale"
    assert [settings.value_tiers.tier_of(r) for r in (0.5, 0.49, 0.25, 0.24, 0.1, 0.09, 0.05, 0.049)] == [
        "PREMIUM", "HIGH", "HIGH", "MEDIUM", "MEDIUM", "LOW", "LOW", "MINIMAL"]


@pytest.mark.parametrize(
    "section",
    [
        {"numeric_features": ["duration"]},
        {"numeric_features": ["Call Duration"]},
        {"categorical_features": ["lead_status"]},
        {"columns": {"lead_source": "duration"}},
    ],
)
def test_a_feature_known_only_after_the_outcome_is_refused(section):
    with pytest.raises(ValidationError, match="known only after the outcome"):
        LeadsSettings(**section)


@pytest.mark.parametrize(
    "section",
    [
        {"columns": {"is_sale": "result"}, "categorical_features": ["result"]},
        {"columns": {"is_sale": "result", "lead_source": "result"}},
    ],
)
def test_the_outcome_column_cannot_also_be_a_feature(section):
    with pytest.raises(ValidationError, match="is the outcome column"):
        LeadsSettings(**section)


def test_earlier_campaign_outcome_is_not_mistaken_for_leakage():
    settings = LeadsSettings(categorical_features=["poutcome", "marital"], numeric_features=["balance", "campaign"])
    assert settings.categorical_features == ("poutcome", "marital")


def test_name_matching_uses_whole_words():
    assert name_words("lastCallDuration (s)") == ("last", "call", "duration", "s")
    assert leaks_outcome("Sales Region", ("sale",)) is None
    assert leaks_outcome("is_sale", ("is sale",)) == "is sale"


@pytest.mark.parametrize(
    "section, message",
    [
        ({"source": "file"}, "path"),
        ({"k": 12}, "k must be"),
        ({"k": "auto", "k_min": 5, "k_max": 3}, "k_min <= k_max"),
        ({"age_bins": [30, 20]}, "increasing"),
        ({"value_tiers": {"HIGH": 0.6}}, "fall from PREMIUM"),
        ({"categorical_features": ["State"]}, "already mapped"),
        ({"numeric_features": ["x", "x"]}, "more than once"),
        ({"unknown_key": 1}, "Extra inputs"),
    ],
)
def test_invalid_sections_are_refused(section, message):
    with pytest.raises(ValidationError, match=message):
        LeadsSettings(**section)

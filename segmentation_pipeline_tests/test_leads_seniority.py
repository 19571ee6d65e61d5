"""Seniority from job titles: a labelled fixture of real-looking titles, and the scoring rules."""

from pathlib import Path

import pandas as pd
import pytest

from segmentation_pipeline.leads.seniority import SENIORITY_LEVELS, seniority_column, seniority_of

FIXTURE = Path(__file__).parent / "data" / "labelled_job_titles.csv"


def test_at_least_95_percent_of_the_labelled_titles_are_classified_correctly():
    labelled = pd.read_csv(FIXTURE, keep_default_na=False)
    assert len(labelled) >= 200
    assert set(labelled["seniority"]) == set(SENIORITY_LEVELS) | {"Unknown"}
    predicted = labelled["title"].map(seniority_of)
    wrong = labelled[predicted != labelled["seniority"]]
    assert len(wrong) <= 0.05 * len(labelled), wrong.assign(predicted=predicted[wrong.index]).to_string()


@pytest.mark.parametrize(
    "title, level",
    [
        ("Sr. VP, Global Sales", "Senior Management"),  # vice president is not read as president
        ("Vice President", "Senior Management"),
        ("CFO", "C-Suite"),
        ("Asst. Mgr", "Management"),  # a tie goes to the more senior level
        ("Mgr", "Management"),
        ("Jr Analyst", "Entry-Level"),
        ("Founder/Owner", "C-Suite"),
        ("Carpenter", "Unknown"),
        ("", "Unknown"),
        (None, "Unknown"),
    ],
)
def test_abbreviations_and_ties(title, level):
    assert seniority_of(title) == level


def test_column_is_an_ordered_categorical_with_unknown_for_missing_titles():
    column = seniority_column(pd.Series(["CEO", None, "Data Analyst", "CEO"]))
    assert list(column.cat.categories) == list(SENIORITY_LEVELS) + ["Unknown"]
    assert column.tolist() == ["C-Suite", "Unknown", "Professional", "C-Suite"]

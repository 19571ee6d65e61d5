"""Raw leads -> clean + rejected: outcome parsing, Unknown for placeholders, ranges, nothing dropped."""

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.leads.checks import split_problems
from segmentation_pipeline.leads.cleaning import clean_leads, lead_attributes, parse_is_sale, range_labels
from segmentation_pipeline.leads.ingest import read_leads
from segmentation_pipeline.leads.settings import LeadsSettings

COLUMNS = {"state": "St", "industry": None, "job_title": "Title", "education_level": None, "age_range": "Age",
           "years_experience": "Years", "gender": None, "lead_source": "Source", "is_sale": "Won?"}


def _raw(**overrides) -> pd.DataFrame:
    rows = {
        "St": ["CA", " NY ", "Select", None, "TX", "CA", "WA"],
        "Title": ["VP Sales", "Data Analyst", "N/A", "Intern", "CEO", "-", "Nurse"],
        "Age": ["37", "25-34", "71", "", "19", "44.0", "unknown"],
        "Years": [12, 3, 40, None, 0, 7, 2],
        "Source": ["Referral", "Webinar", "Webinar", "Referral", "", "Cold Call", "Webinar"],
        "Won?": ["TRUE", "false", "Y", "no", "1", "maybe", None],
        "Notes": list("abcdefg"),
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("text, outcome", [("TRUE", True), ("FALSE", False), ("true", True), ("false", False),
                                           ("1", True), ("0", False), ("yes", True), ("no", False), ("Y", True),
                                           ("N", False), (" Yes ", True), (True, True), (0.0, False)])
def test_is_sale_accepts_the_documented_spellings(text, outcome):
    parsed, reasons = parse_is_sale(pd.Series([text, "TRUE"], dtype="object"))
    assert parsed.iloc[0] == outcome and reasons.iloc[0] is None


def test_unreadable_or_missing_outcomes_are_rejected_with_a_reason_and_kept():
    settings = LeadsSettings(columns=COLUMNS)
    raw = _raw()
    cleaned = clean_leads(raw, settings, "leads.csv")
    assert split_problems(raw, cleaned) == []
    assert cleaned.clean["source_row"].tolist() == [0, 1, 2, 3, 4]
    assert cleaned.clean["is_sale"].tolist() == [True, False, True, False, True]
    rejected = cleaned.rejected
    assert rejected["source_row"].tolist() == [5, 6]
    assert rejected["Notes"].tolist() == ["f", "g"]  # every raw column is kept
    assert "'maybe' is not one of TRUE/FALSE" in rejected["reject_reason"].iloc[0]
    assert rejected["reject_reason"].iloc[1] == "is_sale is missing"


def test_placeholders_and_missing_values_become_unknown_and_numbers_are_binned():
    clean = clean_leads(_raw(), LeadsSettings(columns=COLUMNS)).clean
    assert clean["state"].tolist() == ["CA", "NY", "Unknown", "Unknown", "TX"]
    assert clean["industry"].tolist() == ["Unknown"] * 5  # not in the file
    assert clean["lead_source"].tolist()[-1] == "Unknown"
    assert clean["age_range"].tolist() == ["35-44", "25-34", "65+", "Unknown", "18-24"]
    assert clean["years_experience"].tolist() == ["11-15", "3-5", "21+", "Unknown", "0-2"]
    assert clean["seniority"].tolist() == ["Senior Management", "Professional", "Unknown", "Entry-Level", "C-Suite"]
    # ranges are ordered by their first number, Unknown last
    assert list(clean["age_range"].cat.categories) == ["18-24", "25-34", "35-44", "65+", "Unknown"]


def test_range_labels_follow_the_bins():
    assert range_labels((18, 25, 35)) == ["<18", "18-24", "25-34", "35+"]
    assert range_labels((0, 2.5)) == ["<0", "0-2.5", "2.5+"]


def test_a_column_of_mostly_non_outcomes_is_a_mapping_error():
    raw = _raw(**{"Won?": ["a", "b", "c", "d", "e", "TRUE", "f"]})
    with pytest.raises(InputDataError, match=r"Column 'Won\?' \(mapped to is_sale\) in 'leads.csv' does not hold outcomes"):
        clean_leads(raw, LeadsSettings(columns=COLUMNS), "leads.csv")


def test_a_missing_mapped_column_names_the_file_and_the_column(tmp_path):
    path = tmp_path / "leads.csv"
    _raw().drop(columns="Title").to_csv(path, index=False)
    settings = LeadsSettings(source="file", path=str(path), columns=COLUMNS, numeric_features=["Scroe"])
    with pytest.raises(InputDataError) as error:
        read_leads(settings)
    message = str(error.value)
    assert str(path) in message and "'Title' (mapped to job_title)" in message and "'Scroe' (numeric feature)" in message


def test_extra_features_are_typed_and_a_text_column_is_not_numeric():
    settings = LeadsSettings(columns=COLUMNS, categorical_features=["Notes"], numeric_features=["Score"])
    clean = clean_leads(_raw(Score=["1", "2.5", "", "n/a", "4", "5", "6"]), settings).clean
    assert clean["Notes"].tolist() == list("abcde")
    assert np.isnan(clean["Score"].iloc[2]) and np.isnan(clean["Score"].iloc[3]) and clean["Score"].iloc[1] == 2.5
    with pytest.raises(InputDataError, match="'Score' .* does not hold numbers"):
        clean_leads(_raw(Score=list("abcdefg")), settings)


def test_attributes_of_a_new_lead_need_only_the_fields_it_has():
    attributes = lead_attributes(pd.DataFrame([{"job_title": "Head of Growth", "age_range": 52}]), LeadsSettings())
    row = attributes.iloc[0]
    assert (row["seniority"], row["age_range"], row["industry"]) == ("Senior Management", "45-54", "Unknown")

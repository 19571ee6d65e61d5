"""The synthetic lead generator: shipped personas, exact proportions, determinism, files it writes."""

import pytest

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.leads.ingest import read_leads
from segmentation_pipeline.leads.settings import LeadColumns, LeadsSettings
from segmentation_pipeline.leads.synthetic import (
    DEFAULT_LEAD_PERSONAS_PATH,
    generate_leads,
    load_lead_personas,
    write_synthetic_leads,
)


def test_the_personas_ship_inside_the_package():
    assert DEFAULT_LEAD_PERSONAS_PATH.parent.name == "leads"
    personas = load_lead_personas()
    assert len(personas.personas) == 4


def test_leads_have_the_default_export_columns_and_known_personas_in_exact_proportions():
    synthetic = generate_leads(1000, seed=3)
    expected = [c for c in LeadColumns().model_dump().values()]
    assert [c for c in synthetic.leads.columns if c != "Lead ID"] == expected
    shares = synthetic.truth["persona"].value_counts(normalize=True)
    weights = {name: p.weight for name, p in load_lead_personas().personas.items()}
    assert shares.to_dict() == pytest.approx(weights)
    assert set(synthetic.leads["is_sale"]) == {"TRUE", "FALSE"}
    # the early-career persona converts far less than the executives
    rate = (synthetic.leads["is_sale"] == "TRUE").groupby(synthetic.truth["persona"], observed=True).mean()
    assert rate["enterprise_tech_executives"] > 3 * rate["early_career_retail_and_education"]


def test_same_seed_same_leads_other_seed_other_leads():
    assert generate_leads(500, 1).leads.equals(generate_leads(500, 1).leads)
    assert not generate_leads(500, 1).leads.equals(generate_leads(500, 2).leads)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_file_reads_back_as_a_leads_file(tmp_path, suffix):
    path = write_synthetic_leads(tmp_path / f"leads{suffix}", n=300, seed=5)
    leads = read_leads(LeadsSettings(source="file", path=str(path)))
    assert leads.truth is None and len(leads.raw) == 300
    expected = generate_leads(300, 5).leads
    assert leads.raw["Job Title"].fillna("").tolist() == expected["Job Title"].tolist()


def test_an_invalid_personas_file_is_refused(tmp_path):
    text = DEFAULT_LEAD_PERSONAS_PATH.read_text().replace("weight: 0.20", "weight: 0.25", 1)
    path = tmp_path / "personas.yml"
    path.write_text(text)
    with pytest.raises(InputDataError, match="weights sum to 1.05"):
        generate_leads(10, 1, path)


def test_unsupported_file_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match=".csv or .parquet"):
        write_synthetic_leads(tmp_path / "leads.xlsx", 10, 1)

"""Personas, the clustered-leads table, the charts and the checks over them, on the whole core."""

import copy
import json

import numpy as np
import pytest

from segmentation_pipeline.charts import CHART_SIZES, png_size
from segmentation_pipeline.leads import checks
from segmentation_pipeline.leads.cleaning import clean_leads
from segmentation_pipeline.leads.conversion import conversion_by_cluster
from segmentation_pipeline.leads.personas import build_personas, clustered_leads_table, concentration_of
from segmentation_pipeline.leads.pipeline import run_leads
from segmentation_pipeline.leads.scoring import fit_conversion_score
from segmentation_pipeline.leads.segmentation import segment_leads
from segmentation_pipeline.leads.settings import LeadsSettings

SETTINGS = LeadsSettings(synthetic={"leads": 3000, "seed": 8}, bootstraps=3)
PERSONA_KEYS = {"persona_name", "cluster_id", "cluster_size", "cluster_percentage", "rank", "conversion_metrics",
                "demographics", "geography", "professional", "acquisition"}
METRIC_KEYS = {"conversion_rate", "value_tier", "conversions", "non_conversions", "total_records", "ci_low",
               "ci_high", "lift", "small_sample"}


@pytest.fixture(scope="module")
def run():
    return run_leads(SETTINGS)


def test_personas_document_has_the_documented_shape(run):
    personas = json.loads(json.dumps(run.personas))  # plain JSON types only
    assert personas["total_leads"] == 3000 and personas["n_personas"] == 4
    for persona in personas["personas"]:
        assert set(persona) == PERSONA_KEYS
        assert set(persona["conversion_metrics"]) == METRIC_KEYS
        assert set(persona["demographics"]) == {"seniority", "experience", "age", "gender"}
        assert set(persona["professional"]) == {"industries", "titles", "education"}
        assert persona["geography"]["concentration"] in ("High", "Medium", "Low")
        assert {"source", "leads", "percentage", "conversions", "conversion_rate"} <= set(
            persona["acquisition"]["lead_sources"][0])
    rates = [p["conversion_metrics"]["conversion_rate"] for p in personas["personas"]]
    assert rates == sorted(rates, reverse=True) and [p["rank"] for p in personas["personas"]] == [1, 2, 3, 4]
    names = [p["persona_name"] for p in personas["personas"]]
    assert names[0] == "C-Suite in Technology [HIGH VALUE]" and names[-1].startswith("Entry-Level in ")


def test_every_check_passes_on_a_real_run(run):
    assert checks.split_problems(run.input.raw, run.cleaned) == []
    assert checks.conversion_problems(run.conversion, run.cleaned.clean) == []
    assert checks.assignment_problems(run.clustered, len(run.input.raw), 4) == []
    assert checks.persona_problems(run.personas, run.segmentation.labels) == []
    assert checks.tier_problems(run.personas, SETTINGS) == []


def test_checks_catch_broken_personas(run):
    broken = copy.deepcopy(run.personas)
    first, second = broken["personas"][:2]
    second["persona_name"] = first["persona_name"]
    first["cluster_size"] += 1
    first["cluster_percentage"] += 5
    first["conversion_metrics"]["value_tier"] = "PREMIUM"
    first["demographics"]["gender"]["Female"] += 1
    problems = checks.persona_problems(broken, run.segmentation.labels)
    assert any("names repeat" in p for p in problems)
    assert any(f"persona of cluster {first['cluster_id']}: size" in p for p in problems)
    assert any("cluster_percentage over personas add up to 105" in p for p in problems)
    assert any(": gender add up to 101" in p for p in problems)
    assert any("tier PREMIUM, expected HIGH" in p for p in checks.tier_problems(broken, SETTINGS))


def test_checks_catch_incomplete_assignments(run):
    clustered = run.clustered.copy()
    clustered.loc[0, "Cluster"] = np.nan
    clustered.loc[1, "Cluster"] = 7
    problems = checks.assignment_problems(clustered.iloc[:-1], len(run.input.raw), 4)
    assert len(problems) == 3


def test_clustered_leads_are_the_input_rows_plus_cluster_and_score(run):
    table = run.clustered
    assert len(table) == len(run.input.raw)
    assert table[list(run.input.raw.columns)].equals(run.input.raw)
    clean_rows = run.cleaned.clean["source_row"].to_numpy()
    assert np.array_equal(table["Cluster"].to_numpy()[clean_rows], run.segmentation.labels)
    assert table["conversion_score"].between(0, 1).all()
    names = {p["cluster_id"]: p["persona_name"] for p in run.personas["personas"]}
    assert (table["Persona"].astype(str) == table["Cluster"].map(names)).all()


def test_rejected_leads_still_get_a_cluster_and_a_score():
    settings = LeadsSettings(synthetic={"leads": 600, "seed": 8}, bootstraps=0)
    raw = run_leads(settings).input.raw.copy()
    raw.loc[[3, 10], "is_sale"] = ["maybe", None]
    cleaned = clean_leads(raw, settings)
    assert cleaned.rejected["source_row"].tolist() == [3, 10]
    segmentation = segment_leads(cleaned.clean, settings)
    is_sale = cleaned.clean["is_sale"].to_numpy()
    conversion = conversion_by_cluster(segmentation.labels, is_sale, 4, settings)
    score = fit_conversion_score(segmentation.encoded, is_sale, settings)
    personas = build_personas(cleaned.clean, segmentation.labels, conversion, settings)
    table = clustered_leads_table(raw, cleaned, segmentation, score, personas, settings)
    assert checks.assignment_problems(table, len(raw), 4) == []
    assert table.loc[[3, 10], "conversion_score"].between(0, 1).all()


def test_small_clusters_are_flagged_and_names_stay_unique():
    settings = LeadsSettings(synthetic={"leads": 1200, "seed": 8}, k=8, min_cluster_size=150, bootstraps=0)
    run = run_leads(settings)
    names = [p["persona_name"] for p in run.personas["personas"]]
    assert len(set(names)) == 8
    small = [p for p in run.personas["personas"] if p["cluster_size"] < 150]
    assert small and all(p["conversion_metrics"]["value_tier"] is None for p in small)
    assert all(p["persona_name"].endswith("[SMALL SAMPLE]") for p in small)
    assert checks.tier_problems(run.personas, settings) == []
    assert checks.persona_problems(run.personas, run.segmentation.labels) == []


def test_charts_have_their_documented_sizes(run):
    assert CHART_SIZES["leads_dashboard"] == (1400, 1000) and CHART_SIZES["leads_pca"] == (1000, 700)
    assert png_size(run.dashboard_png) == (1400, 1000)
    assert png_size(run.pca_png) == (1000, 700)


@pytest.mark.parametrize("share, level", [(0.71, "High"), (0.70, "Medium"), (0.41, "Medium"), (0.40, "Low")])
def test_geographic_concentration_levels(share, level):
    assert concentration_of(share) == level

"""The leads domain in the running project: its assets materialized in-process on small synthetic
leads (files published, blocking checks passing, metadata, personas recovered), on the real bank
marketing leads with the README's mapping, `duration` refused at config load, the REST service's
`/leads/segment` segmenting leads given by their fields with the lead model the pipeline published,
and `generate-leads`."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from segmentation_pipeline import cli, layout, report
from segmentation_pipeline.clustering import ModelBundle
from segmentation_pipeline.config import load_config
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.service.app import create_app
from segmentation_pipeline.service.settings import ServiceSettings
from segmentation_pipeline_tests.conftest import materialize, write_config
from segmentation_pipeline_tests.service_support import publish_retail_set
from segmentation_pipeline_tests.test_report import inputs  # noqa: F401 (the report test's retail inputs)

ASSETS = ["raw_leads", "cleaned_leads", "rejected_leads", "lead_segments", "lead_conversion_score", "lead_personas", "lead_charts"]
CHECKS = {
    ("cleaned_leads", "raw_equals_clean_plus_rejected"),
    ("lead_conversion_score", "no_outcome_derived_feature"),
    ("lead_personas", "conversions_sum_to_total"),
    ("lead_personas", "assignments_exclusive_and_complete"),
    ("lead_personas", "persona_counts_and_percentages"),
    ("lead_personas", "tiers_match_thresholds"),
    ("lead_charts", "lead_pngs_valid_at_documented_size"),
}
SMALL_LEADS = {"synthetic": {"leads": 3000, "seed": 11}, "bootstraps": 2}
FILES = {
    layout.LEADS_PERSONAS, layout.LEADS_CLUSTERED, layout.LEADS_CONVERSION, layout.LEADS_REJECTED,
    layout.LEADS_BUNDLE, layout.LEAD_FEATURES, *(layout.chart("leads", name) for name in ("dashboard", "pca")),
}
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BANK_LEADS = DATASETS / "bank_marketing_leads.csv"
# The README's mapping of the bank marketing file: no state, industry, experience, gender; the job is
# the title, contact the lead source, age binned; the client's situation as extra features; never duration.
BANK_MAPPING = {
    "source": "file",
    "path": str(BANK_LEADS),
    "columns": {
        "state": None, "industry": None, "job_title": "job", "education_level": "education", "age_range": "age",
        "years_experience": None, "gender": None, "lead_source": "contact", "is_sale": "y",
    },
    "categorical_features": ["marital", "default", "housing", "loan", "poutcome"],
    "numeric_features": ["balance", "campaign", "pdays", "previous"],
    "bootstraps": 2,
}


def _evaluations(result) -> dict:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _metadata(instance, asset: str) -> dict:
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A retail set published first (so the service has its required family), then the leads assets
    materialized on small synthetic leads and published on top of it."""
    folder = tmp_path_factory.mktemp("leads")
    config = write_config(folder, leads=SMALL_LEADS)
    publish_retail_set(folder / "outputs", "retail-run", methods=("kmeans",))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, ASSETS)
    return folder, config, instance, result


def test_leads_assets_publish_their_files_and_pass_their_checks(synthetic_run):
    folder, config, instance, result = synthetic_run
    assert result.success
    evaluations = _evaluations(result)
    assert set(evaluations) == CHECKS
    assert [name for name, e in evaluations.items() if not e.passed] == []
    assert all(e.severity == dg.AssetCheckSeverity.ERROR for e in evaluations.values())  # all blocking

    out = folder / "outputs"
    published = OutputFolder(out).current()
    assert published.run_id == result.run_id
    assert FILES <= set(published.manifest["files"])
    for relative in FILES:  # at the stable paths, through `current`
        assert (out / relative).is_file(), relative

    personas = json.loads((out / layout.LEADS_PERSONAS).read_text())
    clustered = pd.read_csv(out / layout.LEADS_CLUSTERED)
    conversion = pd.read_parquet(out / layout.LEADS_CONVERSION)
    rejected = pd.read_csv(out / layout.LEADS_REJECTED)
    assert len(clustered) == 3000 and {"Cluster", "Persona", "conversion_score"} <= set(clustered.columns)
    assert clustered["Lead ID"].tolist() == sorted(clustered["Lead ID"])  # input order
    assert len(conversion) == personas["n_personas"] == 4
    assert conversion["total_records"].sum() + len(rejected) == 3000
    assert [p["rank"] for p in personas["personas"]] == [1, 2, 3, 4]
    rates = [p["conversion_metrics"]["conversion_rate"] for p in personas["personas"]]
    assert rates == sorted(rates, reverse=True)

    segments = _metadata(instance, "lead_segments")
    assert segments["k"].value == 4 and segments["k_source"].value == "fixed"
    assert segments["metric/ari_vs_truth"].value >= 0.80  # the known lead personas are recovered
    assert "metric/silhouette" in segments and "metric/stability_ari_mean" in segments
    score = _metadata(instance, "lead_conversion_score")
    assert 0.5 < score["metric/roc_auc"].value <= 1 and 0 < score["metric/pr_auc"].value <= 1
    assert score["metric/brier"].value < score["metric/brier_base_rate"].value
    charts = _metadata(instance, "lead_charts")
    assert charts["chart/dashboard"].value.startswith("![") and charts["chart/pca"].value.startswith("![")

    graph = build_definitions(config).resolve_asset_graph()
    rows = {"raw_leads": 3000, "lead_personas": 4, "lead_charts": 2}
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "leads" and node.description and node.owners and node.kinds, name
        metadata = _metadata(instance, name)
        assert "dagster/row_count" in metadata and metadata["dagster/column_schema"].value.columns, name
        if name in rows:
            assert metadata["dagster/row_count"].value == rows[name], name
    raw, clean, rejected_rows = (_metadata(instance, n)["dagster/row_count"].value for n in ASSETS[:3])
    assert raw == clean + rejected_rows


def test_the_service_segments_leads_with_the_published_lead_model(synthetic_run):
    folder, config, _, result = synthetic_run
    out = folder / "outputs"
    settings = load_config(config).leads_settings()
    mapping = {name: column for name, column in settings.columns.mapped().items() if name != "is_sale"}
    clustered = pd.read_csv(out / layout.LEADS_CLUSTERED, keep_default_na=False, dtype=str)
    personas = json.loads((out / layout.LEADS_PERSONAS).read_text())["personas"]
    names = {p["cluster_id"]: p["persona_name"] for p in personas}
    bundle = ModelBundle.load(out / layout.LEADS_BUNDLE)
    with TestClient(create_app(out, ServiceSettings(), watch=False)) as client:
        ready = client.get("/ready").json()
        assert ready["models"] == {"retail": ["kmeans"], "leads": ["kmeans"]} and ready["run_id"] == result.run_id

        # A lead as a CRM sends it: the persona is the one the published bundle predicts for that row.
        lead = {"job_title": "VP of Sales", "industry": "Banking", "lead_source": "Webinar"}
        response = client.post("/leads/segment", json=lead)
        assert response.status_code == 200, response.text
        answer = response.json()
        predicted = int(bundle.predict(pd.DataFrame([lead])).labels[0])
        assert answer["segment_id"] == predicted and answer["segment_name"] == names[predicted]
        assert answer["seniority"] == "Senior Management"
        assert answer["method"] == "kmeans" and answer["model_version"] == result.run_id
        persona = next(p for p in personas if p["cluster_id"] == predicted)
        assert answer["stats"]["rate"] == persona["conversion_metrics"]["conversion_rate"]
        assert answer["stats"]["total"] == persona["cluster_size"]

        # Leads of the input file, sent with their file values as fields (blanks as they are), land in
        # the cluster the pipeline assigned them: the service prepares them like the pipeline did.
        assigned = clustered[clustered["Cluster"] != ""]
        for row in (0, 7, 123, len(assigned) - 1):
            source = assigned.iloc[row]
            body = {name: source[column] for name, column in mapping.items()}
            response = client.post("/leads/segment", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["segment_id"] == int(source["Cluster"])
            assert response.json()["segment_name"] == source["Persona"]

        unknown = client.post("/leads/segment", json={"Job Title": "VP of Sales"})
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "Job Title"]


def test_the_report_shows_the_lead_personas_and_charts(synthetic_run, inputs):  # noqa: F811
    folder = synthetic_run[0]
    out = folder / "outputs"
    personas = json.loads((out / layout.LEADS_PERSONAS).read_text())
    lead_charts = {f"leads/{name}": (out / layout.chart("leads", name)).read_bytes() for name in ("dashboard", "pca")}
    comparison, retail_personas, chart_pngs, links = inputs
    html = report.build_report(comparison, retail_personas, chart_pngs, links, recommended="kmeans",
                               leads={"personas": personas, "charts": lead_charts})
    shown = report.report_references(html)
    assert shown["external_references"] == []
    assert {"leads/dashboard", "leads/pca"} <= set(shown["charts"])
    assert shown["personas"] == [p["persona_name"] for p in sorted(retail_personas["kmeans"]["personas"], key=lambda p: p["rank"])]
    section = html[html.index('<section id="leads">'):]
    section = section[: section.index("</section>")]
    positions = [section.index(p["persona_name"].replace("&", "&amp;")) for p in personas["personas"]]
    assert positions == sorted(positions)  # ranked by conversion rate
    for persona in personas["personas"]:
        metrics = persona["conversion_metrics"]
        assert f"{100 * metrics['ci_low']:.1f}% &ndash; {100 * metrics['ci_high']:.1f}%" in section
    assert '<a href="#leads">Leads</a>' in html


@pytest.mark.skipif(not BANK_LEADS.is_file(), reason=f"{BANK_LEADS} is not present")
def test_leads_assets_on_the_bank_marketing_leads(tmp_path):
    config = write_config(tmp_path, leads=BANK_MAPPING)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, ASSETS)
    assert result.success
    assert [name for name, e in _evaluations(result).items() if not e.passed] == []
    out = tmp_path / "outputs"
    personas = json.loads((out / layout.LEADS_PERSONAS).read_text())
    assert personas["total_leads"] == 45_212 and len(personas["personas"]) == 4
    assert sum(p["conversion_metrics"]["conversions"] for p in personas["personas"]) == 5_290
    assert len(pd.read_csv(out / layout.LEADS_CLUSTERED, usecols=["Cluster"])) == 45_212
    assert "duration" not in _metadata(instance, "lead_segments")["encoding"].value["numeric_percentiles"]
    assert "metric/ari_vs_truth" not in _metadata(instance, "lead_segments")  # real data: no truth
    assert 0.65 < _metadata(instance, "lead_conversion_score")["metric/roc_auc"].value < 0.90


def test_duration_as_a_feature_is_refused_at_config_load(tmp_path):
    config = write_config(tmp_path, leads={**BANK_MAPPING, "numeric_features": ["balance", "duration"]})
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    [line] = str(refused.value).splitlines()  # one line naming the file, the key and the column
    assert line.startswith(f"{config}: leads: numeric_features: 'duration' looks like 'duration', a value known only after the outcome")
    assert "(got {" not in line  # the whole section is not echoed


def test_generate_leads_writes_a_synthetic_leads_file(tmp_path, capsys):
    out = tmp_path / "leads.csv"
    assert cli.main(["generate-leads", "--leads", "500", "--seed", "3", "--out", str(out)]) == 0
    assert "500 synthetic leads" in capsys.readouterr().out
    leads = pd.read_csv(out)
    assert len(leads) == 500 and {"Job Title", "Industry", "is_sale"} <= set(leads.columns)
    again = tmp_path / "again.csv"
    cli.main(["generate-leads", "--leads", "500", "--seed", "3", "--out", str(again)])
    assert again.read_bytes() == out.read_bytes()  # same seed, same file
    assert cli.main(["generate-leads", "--leads", "10", "--out", str(tmp_path / "leads.txt")]) == 2
    assert capsys.readouterr().err.startswith("error: ")

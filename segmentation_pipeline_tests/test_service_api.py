"""The service's endpoints on a real published set: fields, defaults, errors, key, CORS, docs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline.service import ServiceSettings, create_app
from segmentation_pipeline.service.leads import LeadModelError, LeadSegmenter
from segmentation_pipeline_tests.service_support import clustered, customer_features, lead_model, publish_retail_set

METHODS = ("kmeans", "gmm", "fuzzy_cmeans", "autoencoder_kmeans", "hdbscan")
REFERENCE_INPUT = {"recency": 30, "frequency": 5, "monetary": 1500.0}
PLACEMENT_FIELDS = {
    "segment_id", "segment_name", "value_tier", "confidence", "distance_to_center", "second_segment",
    "defaulted_features",
}


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    publish_retail_set(folder, "run-a", methods=METHODS, recommended="gmm", leads=True)
    return folder


@pytest.fixture(scope="module")
def client(output_dir):
    with TestClient(create_app(output_dir, ServiceSettings(api_key_env=None), watch=False)) as test_client:
        yield test_client


def test_health_has_the_reference_body(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "segmentation-agent"}


def test_ready_lists_the_loaded_set(client, output_dir):
    body = client.get("/ready").json()
    assert body["status"] == "ready" and body["problem"] is None
    assert body["set_id"] == OutputFolder(output_dir).current().set_id and body["run_id"] == "run-a"
    assert body["models"] == {"retail": sorted(METHODS), "leads": ["kmeans"]}  # in manifest order


def test_manual_segment_carries_every_documented_field(client):
    response = client.post("/segment/manual", json=REFERENCE_INPUT)
    assert response.status_code == 200
    body = response.json()
    assert PLACEMENT_FIELDS | {"stats", "method", "model_version", "set_id"} == set(body)
    assert body["method"] == "gmm"  # the comparison's recommendation
    assert body["model_version"] == "run-a"
    assert 0 <= body["confidence"] <= 1 and body["distance_to_center"] >= 0
    assert body["second_segment"]["segment_id"] != body["segment_id"]
    assert body["second_segment"]["distance_to_center"] >= body["distance_to_center"] or body["method"] != "kmeans"
    assert set(body["stats"]) == {"recency_days", "frequency", "monetary"}
    assert set(body["stats"]["monetary"]) == {"mean", "median", "min", "max"}
    assert body["defaulted_features"] == ["avg_order_value", "tenure_months", "return_rate"]


def test_persona_name_and_tier_come_from_the_published_personas(client):
    body = client.post("/segment/manual?method=kmeans", json=REFERENCE_INPUT).json()
    segments = {s["segment_id"]: s for s in client.get("/segments?method=kmeans").json()["segments"]}
    assert body["segment_name"] == segments[body["segment_id"]]["segment_name"]
    assert body["value_tier"] == segments[body["segment_id"]]["value_tier"]
    assert body["stats"] == segments[body["segment_id"]]["stats"]


def test_kmeans_second_segment_is_farther_than_the_assigned_one(client):
    body = client.post("/segment/manual", json={**REFERENCE_INPUT, "method": "kmeans"}).json()
    assert body["second_segment"]["distance_to_center"] >= body["distance_to_center"]


def test_missing_optional_features_use_the_documented_defaults(client):
    table = customer_features()
    customer = table.iloc[17]
    full = {
        "recency": float(customer["recency_days"]), "frequency": float(customer["frequency"]),
        "monetary": float(customer["monetary"]), "avg_order_value": float(customer["avg_order_value"]),
        "tenure_months": float(table["tenure_months"].median()), "return_rate": float(table["return_rate"].median()),
    }
    explicit = client.post("/segment/manual?method=kmeans", json=full).json()
    defaulted = client.post(
        "/segment/manual?method=kmeans",
        json={key: full[key] for key in ("recency", "frequency", "monetary", "avg_order_value")},
    ).json()
    assert defaulted["defaulted_features"] == ["tenure_months", "return_rate"]
    assert defaulted["distance_to_center"] == pytest.approx(explicit["distance_to_center"])
    derived = client.post(
        "/segment/manual?method=kmeans",
        json={**{k: v for k, v in full.items() if k != "avg_order_value"}},
    ).json()
    with_average = client.post(
        "/segment/manual?method=kmeans", json={**full, "avg_order_value": full["monetary"] / full["frequency"]}
    ).json()
    assert derived["distance_to_center"] == pytest.approx(with_average["distance_to_center"])


def test_every_published_method_is_available(client):
    for method in METHODS:
        body = client.post("/segment/manual", json={**REFERENCE_INPUT, "method": method}).json()
        assert body["method"] == method
        assert client.get(f"/segments?method={method}").json()["method"] == method


def test_customer_segment_is_the_published_label(client):
    for method in ("kmeans", "hdbscan"):
        result = clustered(method)
        for position in (0, 123, len(result.labels) - 1):
            customer_id = str(result.customer_ids[position])
            response = client.post("/segment/customer", json={"customer_id": int(customer_id), "method": method})
            assert response.status_code == 200
            body = response.json()
            assert body["customer_id"] == customer_id
            assert body["segment_id"] == int(result.labels[position])
            assert body["defaulted_features"] == []


def test_customer_placement_matches_the_manual_placement_of_its_features(client):
    customer = customer_features().iloc[42]
    manual = client.post("/segment/manual?method=gmm", json={
        "recency": float(customer["recency_days"]), "frequency": float(customer["frequency"]),
        "monetary": float(customer["monetary"]), "avg_order_value": float(customer["avg_order_value"]),
        "tenure_months": float(customer["tenure_months"]), "return_rate": float(customer["return_rate"]),
    }).json()
    known = client.post("/segment/customer", json={"customer_id": customer["customer_id"], "method": "gmm"}).json()
    for field in ("segment_id", "confidence", "distance_to_center", "second_segment"):
        assert known[field] == pytest.approx(manual[field])


def test_unknown_customer_is_a_404_naming_the_id(client):
    response = client.post("/segment/customer", json={"customer_id": 12347})
    assert response.status_code == 404
    assert response.json()["customer_id"] == "12347"
    assert "12347" in response.json()["detail"]


def test_batch_matches_single_requests_in_order(client):
    rows = [REFERENCE_INPUT, {"recency": 300, "frequency": 1, "monetary": 20.0, "return_rate": 0.5},
            {"recency": 2, "frequency": 40, "monetary": 90000.0, "tenure_months": 11.0}]
    body = client.post("/segment/batch", json={"rows": rows, "method": "fuzzy_cmeans"}).json()
    assert body["method"] == "fuzzy_cmeans" and len(body["results"]) == 3
    assert {s["segment_id"] for s in body["segments"]} >= {r["segment_id"] for r in body["results"]}
    for row, result in zip(rows, body["results"]):
        single = client.post("/segment/manual?method=fuzzy_cmeans", json=row).json()
        assert set(result) == PLACEMENT_FIELDS
        for key in PLACEMENT_FIELDS:
            assert result[key] == pytest.approx(single[key])


def test_batch_takes_ten_thousand_rows_and_refuses_more(client):
    rng = np.random.default_rng(0)
    rows = [
        {"recency": int(r), "frequency": int(f), "monetary": float(m)}
        for r, f, m in zip(rng.integers(0, 365, 10_001), rng.integers(1, 30, 10_001), rng.uniform(0, 5000, 10_001))
    ]
    accepted = client.post("/segment/batch", json={"rows": rows[:10_000]})
    assert accepted.status_code == 200 and len(accepted.json()["results"]) == 10_000
    refused = client.post("/segment/batch", json={"rows": rows})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rows"]


def test_segments_lists_every_persona_with_tier_and_stats(client):
    body = client.get("/segments").json()
    assert body["method"] == "gmm" and body["recommended"] == "gmm" and body["methods"] == sorted(METHODS)
    assert [s["segment_id"] for s in body["segments"]] == list(range(clustered("gmm").n_clusters))
    assert sum(s["size"] for s in body["segments"]) == len(customer_features())
    assert all(s["segment_name"] and s["value_tier"] and s["stats"]["frequency"]["min"] >= 1 for s in body["segments"])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/segment/manual", {**REFERENCE_INPUT, "recency": -1}, ["body", "recency"]),
        ("/segment/manual", {**REFERENCE_INPUT, "frequency": "5"}, ["body", "frequency"]),
        ("/segment/manual", {**REFERENCE_INPUT, "monetary": 1e300}, ["body", "monetary"]),
        ("/segment/manual", {**REFERENCE_INPUT, "monetary": True}, ["body", "monetary"]),
        ("/segment/manual", {"recency": 3, "frequency": 2}, ["body", "monetary"]),
        ("/segment/manual", {**REFERENCE_INPUT, "return_rate": 1.5}, ["body", "return_rate"]),
        ("/segment/manual", {**REFERENCE_INPUT, "recency_days": 3}, ["body", "recency_days"]),
        ("/segment/manual", {**REFERENCE_INPUT, "method": "dbscan"}, ["body", "method"]),
        ("/segment/manual", {**REFERENCE_INPUT, "features": {"colour": 1.0}}, ["body", "features", "colour"]),
        ("/segment/manual", {**REFERENCE_INPUT, "features": {"recency_days": 1.0}}, ["body", "features", "recency_days"]),
        ("/segment/manual", [REFERENCE_INPUT], ["body"]),
        ("/segment/customer", {"customer_id": 1.5}, ["body", "customer_id"]),
        ("/segment/customer", {}, ["body", "customer_id"]),
        ("/segment/batch", {"rows": []}, ["body", "rows"]),
        ("/segment/batch", {"rows": [REFERENCE_INPUT, {**REFERENCE_INPUT, "frequency": 0}]}, ["body", "rows", 1, "frequency"]),
        ("/leads/segment", {"job_title": "CEO", "features": {"seniority": 1.0}}, ["body", "features"]),
        ("/leads/segment", {"Job Title": "CEO"}, ["body", "Job Title"]),
        ("/leads/segment", {"job_title": 5}, ["body", "job_title"]),
        ("/leads/segment", {"industry": "x" * 201}, ["body", "industry"]),
        ("/leads/segment", {"age_range": -1}, ["body", "age_range"]),
        ("/leads/segment", {"age_range": 1e300}, ["body", "age_range"]),
        ("/leads/segment", {"years_experience": True}, ["body", "years_experience"]),
        ("/leads/segment", {"extra": {"revenue": 5.0}}, ["body", "extra", "revenue"]),
        ("/leads/segment", {"extra": {"company_size": "big"}}, ["body", "extra", "company_size"]),
        ("/leads/segment", {"extra": {"company_size": 1e300}}, ["body", "extra", "company_size"]),
        ("/leads/segment", {"method": "gmm"}, ["body", "method"]),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, path, body, field):
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert field in [error["loc"][: len(field)] for error in response.json()["detail"]]


@pytest.mark.parametrize("raw", [b'{"recency": NaN, "frequency": 5, "monetary": 1}', b'{"recency": 3,', b"recency=3"])
def test_unparseable_bodies_are_422(client, raw):
    response = client.post("/segment/manual", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_unpublished_method_and_conflicting_methods_are_422(tmp_path):
    publish_retail_set(tmp_path, "run-k", methods=("kmeans",))
    with TestClient(create_app(tmp_path, ServiceSettings(api_key_env=None), watch=False)) as client:
        response = client.post("/segment/manual?method=gmm", json=REFERENCE_INPUT)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "method"]
        assert "kmeans" in response.json()["detail"][0]["msg"]
        conflict = client.post("/segment/manual?method=kmeans", json={**REFERENCE_INPUT, "method": "gmm"})
        assert conflict.status_code == 422


def test_configured_method_is_the_default(output_dir):
    settings = ServiceSettings(api_key_env=None, method="hdbscan")
    with TestClient(create_app(output_dir, settings, watch=False)) as client:
        assert client.post("/segment/manual", json=REFERENCE_INPUT).json()["method"] == "hdbscan"


def _canonical(raw_lead: pd.Series, settings) -> dict:
    """A raw lead row (file columns) as a request body (canonical fields, extras under `extra`)."""
    def plain(value):
        return None if pd.isna(value) else value.item() if hasattr(value, "item") else value

    body = {name: plain(raw_lead[column]) for name, column in settings.columns.mapped().items() if name != "is_sale"}
    body["extra"] = {name: plain(raw_lead[name]) for name in settings.categorical_features + settings.numeric_features}
    return body


def test_lead_fields_are_segmented_by_the_published_bundle(client):
    model = lead_model()
    lead = {"job_title": "VP of Sales", "industry": "Banking", "lead_source": "Webinar"}
    response = client.post("/leads/segment", json=lead)
    assert response.status_code == 200, response.text
    body = response.json()
    bundle = model.segmentation.bundle
    # every field present (the bundle's own cleaning needs its numeric extra columns, even if empty)
    row = pd.DataFrame([{name: lead.get(name) for name in bundle.transform.features}])
    predicted = int(bundle.predict(row).labels[0])
    persona = next(p for p in model.personas["personas"] if p["cluster_id"] == predicted)
    assert body["segment_id"] == predicted and body["segment_name"] == persona["persona_name"]
    metrics = persona["conversion_metrics"]
    assert body["value_tier"] == (metrics["value_tier"] or "SMALL SAMPLE")
    assert body["stats"] == {
        "rate": metrics["conversion_rate"], "ci_low": metrics["ci_low"], "ci_high": metrics["ci_high"],
        "lift": metrics["lift"], "conversions": metrics["conversions"], "total": metrics["total_records"],
    }
    assert body["seniority"] == "Senior Management"  # detected from "VP of ..."
    assert body["unknown_fields"] == ["state", "education_level", "age_range", "years_experience", "gender",
                                      "plan", "company_size"]
    assert body["ignored_fields"] == [] and body["method"] == "kmeans" and body["model_version"] == "run-a"
    assert 0 <= body["confidence"] <= 1 and body["second_segment"]["segment_id"] != body["segment_id"]
    assert body["second_segment"]["distance_to_center"] >= body["distance_to_center"]  # k-means


def test_training_leads_sent_as_fields_land_in_their_published_segment(client):
    model = lead_model()
    labels = model.segmentation.labels
    for row in (0, 17, 400, len(model.features) - 1):
        source_row = int(model.features["lead_id"].iat[row])
        body = _canonical(model.raw.iloc[source_row], model.settings)
        answer = client.post("/leads/segment", json=body).json()
        assert answer["segment_id"] == labels[row], (row, body)
        assert "job_title" not in answer["unknown_fields"] or answer["seniority"] == "Unknown"


def test_numbers_placeholders_and_unseen_values_read_like_the_training_leads(client):
    by_number = client.post("/leads/segment", json={"age_range": 40, "years_experience": 7}).json()
    by_label = client.post("/leads/segment", json={"age_range": "35-44", "years_experience": "6-10"}).json()
    assert by_number["distance_to_center"] == pytest.approx(by_label["distance_to_center"])  # binned alike
    assert "age_range" not in by_number["unknown_fields"] and "years_experience" not in by_number["unknown_fields"]
    empty = client.post("/leads/segment", json={}).json()
    placeholders = client.post("/leads/segment", json={"state": "Select", "industry": "N/A", "gender": " - ",
                                                       "job_title": None, "extra": {"plan": ""}}).json()
    assert placeholders["distance_to_center"] == pytest.approx(empty["distance_to_center"])
    assert placeholders["seniority"] == empty["seniority"] == "Unknown"
    unseen = client.post("/leads/segment", json={"industry": "Underwater Basket Weaving", "age_range": "ancient",
                                                 "job_title": "Chief Executive Officer"}).json()
    assert {"industry", "age_range"} <= set(unseen["unknown_fields"]) and "job_title" not in unseen["unknown_fields"]
    assert unseen["seniority"] == "C-Suite"
    extras = client.post("/leads/segment", json={"extra": {"plan": "team", "company_size": 120}}).json()
    assert not {"plan", "company_size"} & set(extras["unknown_fields"])


def test_lead_tiers_of_small_segments_and_refused_lead_bundles():
    model = lead_model()
    personas = json.loads(json.dumps(model.personas))
    personas["personas"][0]["conversion_metrics"]["value_tier"] = None
    segmenter = LeadSegmenter("kmeans", "v", model.segmentation.bundle, personas, model.features)
    assert segmenter.segments[personas["personas"][0]["cluster_id"]].value_tier == "SMALL SAMPLE"
    with pytest.raises(LeadModelError, match="not canonical lead fields"):
        LeadSegmenter("kmeans", "v", clustered("kmeans").bundle, personas, model.features)


def test_leads_without_a_published_lead_model_is_a_404(tmp_path):
    publish_retail_set(tmp_path, "run-r", methods=("kmeans",))
    with TestClient(create_app(tmp_path, ServiceSettings(api_key_env=None), watch=False)) as client:
        response = client.post("/leads/segment", json={"job_title": "CEO"})
        assert response.status_code == 404
        assert "no lead model" in response.json()["detail"]


def test_api_key_from_the_named_environment_variable(output_dir, monkeypatch):
    monkeypatch.setenv("TEST_SEGMENT_KEY", "s3cret")
    with TestClient(create_app(output_dir, ServiceSettings(api_key_env="TEST_SEGMENT_KEY"), watch=False)) as client:
        assert client.post("/segment/manual", json=REFERENCE_INPUT).status_code == 401
        assert client.post("/segment/manual", json=REFERENCE_INPUT, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/segments").status_code == 401
        assert client.post("/segment/manual", json=REFERENCE_INPUT, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200


def test_api_key_variable_unset_means_no_key(output_dir, monkeypatch):
    monkeypatch.delenv("TEST_SEGMENT_KEY", raising=False)
    with TestClient(create_app(output_dir, ServiceSettings(api_key_env="TEST_SEGMENT_KEY"), watch=False)) as client:
        assert client.post("/segment/manual", json=REFERENCE_INPUT).status_code == 200


def test_cors_is_off_by_default_and_on_for_configured_origins(client, output_dir):
    preflight = {"Origin": "https://crm.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/segment/manual", headers=preflight).headers
    settings = ServiceSettings(api_key_env=None, cors_origins=("https://crm.example",))
    with TestClient(create_app(output_dir, settings, watch=False)) as cors_client:
        response = cors_client.options("/segment/manual", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://crm.example"


def test_docs_and_openapi_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/ready", "/segment/manual", "/segment/customer", "/segment/batch", "/segments",
            "/leads/segment"} <= set(paths)


def test_nothing_published_is_not_ready(tmp_path):
    with TestClient(create_app(tmp_path, ServiceSettings(api_key_env=None), watch=False)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "nothing published" in ready.json()["problem"]
        assert client.get("/health").status_code == 200
        assert client.post("/segment/manual", json=REFERENCE_INPUT).status_code == 503


def test_settings_defaults_and_validation():
    settings = ServiceSettings()
    assert (settings.host, settings.port, settings.method, settings.max_batch_rows) == ("127.0.0.1", 5001, None, 10_000)
    assert settings.cors_origins == ()
    for bad in ({"port": 0}, {"method": "dbscan"}, {"reload_poll_seconds": 0}, {"colour": "red"}):
        with pytest.raises(ValueError):
            ServiceSettings(**bad)


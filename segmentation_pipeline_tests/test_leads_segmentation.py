"""Clustering the leads: nominal/ordinal encoding, the shared driver, persona recovery, the model bundle."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation_pipeline.clustering import ClusteringSettings, ModelBundle, run_method
from segmentation_pipeline.leads.cleaning import clean_leads
from segmentation_pipeline.leads.encoding import CATEGORY_WEIGHT, LeadEncoder
from segmentation_pipeline.leads.ingest import read_leads
from segmentation_pipeline.leads.segmentation import segment_leads
from segmentation_pipeline.leads.settings import LeadsSettings

SETTINGS = LeadsSettings(synthetic={"leads": 4000, "seed": 11})


@pytest.fixture(scope="module")
def synthetic():
    leads = read_leads(SETTINGS)
    cleaned = clean_leads(leads.raw, SETTINGS, leads.source)
    return leads, cleaned, segment_leads(cleaned.clean, SETTINGS)


def test_clusters_recover_the_known_lead_personas(synthetic):
    leads, cleaned, segmentation = synthetic
    truth = leads.truth.set_index("source_row").loc[cleaned.clean["source_row"], "persona"]
    assert adjusted_rand_score(truth, segmentation.labels) >= 0.80
    assert segmentation.result.n_clusters == 4 and segmentation.result.params["k_source"] == "fixed"
    assert segmentation.result.metrics["stability_ari_mean"] is not None  # bootstrap stability is reported


def test_same_seed_same_segments(synthetic):
    _, cleaned, segmentation = synthetic
    assert np.array_equal(segment_leads(cleaned.clean, SETTINGS).labels, segmentation.labels)


def test_nominal_columns_are_one_hot_and_ordinal_columns_ordered():
    clean = pd.DataFrame({
        "state": pd.Categorical(["CA", "NY", "CA", "TX"]),
        "industry": pd.Categorical(["Unknown"] * 4),
        "education_level": pd.Categorical(["BA", "BA", "MA", "MA"]),
        "gender": pd.Categorical(["F", "M", "F", "M"]),
        "lead_source": pd.Categorical(["Web", "Web", "Call", "Call"]),
        "age_range": pd.Categorical(["18-24", "25-34", "35-44", "Unknown"], categories=["18-24", "25-34", "35-44", "Unknown"]),
        "years_experience": pd.Categorical(["0-2"] * 4),
        "seniority": pd.Categorical(["C-Suite", "Entry-Level", "Management", "Management"]),
    })
    encoder = LeadEncoder.fit(clean, LeadsSettings())
    assert "industry=Unknown" not in encoder.columns and "years_experience" not in encoder.columns  # constant
    frame = encoder.frame(clean)
    assert frame["age_range"].tolist() == [0.0, 0.5, 1.0, 0.5]  # Unknown in the middle, plus its indicator
    assert frame["age_range=Unknown"].tolist() == pytest.approx([0, 0, 0, CATEGORY_WEIGHT])
    assert frame["seniority"].tolist() == [1.0, 0.0, 0.5, 0.5]
    # equally common categories weigh 1/sqrt(2): two different ones are exactly 1 apart
    gender = frame[["gender=F", "gender=M"]].to_numpy()
    assert np.sum((gender[0] - gender[1]) ** 2) == pytest.approx(1.0)
    # a rarer state weighs more than a commoner one, at most twice as much
    assert CATEGORY_WEIGHT < frame.loc[1, "state=NY"] <= 2 * CATEGORY_WEIGHT
    assert frame.loc[0, "state=CA"] < CATEGORY_WEIGHT


def test_the_bundle_segments_a_new_lead_from_its_fields(synthetic, tmp_path):
    _, cleaned, segmentation = synthetic
    training = cleaned.clean.drop(columns=["seniority", "is_sale", "source_row"]).astype("object")
    assert np.array_equal(segmentation.bundle.predict(training).labels, segmentation.labels)
    bundle = ModelBundle.load(segmentation.bundle.save(tmp_path / "leads.joblib"))
    lead = pd.DataFrame([{"job_title": "Chief Technology Officer", "industry": "Software", "age_range": 55,
                          "years_experience": 25, "lead_source": "Referral", "state": "CA"}])
    executives = pd.Series(segmentation.labels)[cleaned.clean["seniority"].isin(["C-Suite"]).to_numpy()].mode()[0]
    assert bundle.predict(lead).labels.tolist() == [executives]
    assert "job_title" in bundle.features and "is_sale" not in bundle.features


def test_k_auto_chooses_by_silhouette():
    settings = LeadsSettings(synthetic={"leads": 1500, "seed": 2}, k="auto", k_max=6, bootstraps=2)
    leads = read_leads(settings)
    result = segment_leads(clean_leads(leads.raw, settings).clean, settings).result
    curve = result.selection_curve
    assert curve["criterion"] == "silhouette" and curve["k"] == [2, 3, 4, 5, 6]
    assert result.n_clusters == curve["k"][int(np.argmax(curve["score"]))]


def test_the_driver_can_leave_features_unscaled():
    frame = pd.DataFrame({"customer_id": range(6), "a": [0, 0, 0, 1, 1, 1.0], "b": [0, 0.1, 0, 5, 5, 5.1]})
    settings = ClusteringSettings(features=("a", "b"), log1p_features=(), standardize=False, k=2, bootstraps=0)
    result = run_method("kmeans", frame, settings)
    assert np.array_equal(result.prepared, frame[["a", "b"]].to_numpy())
    assert result.params["preparation"]["scaler"] == "none"


def test_a_lead_without_a_configured_numeric_feature_counts_it_as_unknown():
    """`predict` on a row lacking a configured numeric extra reads it as Unknown, like any field."""
    import numpy as np
    import pandas as pd

    from segmentation_pipeline.leads.cleaning import lead_attributes
    from segmentation_pipeline.leads.settings import LeadsSettings

    settings = LeadsSettings(numeric_features=("balance",))
    attributes = lead_attributes(pd.DataFrame({"job_title": ["VP Sales"]}), settings, "a request")
    assert np.isnan(attributes["balance"].iloc[0]) and attributes["seniority"].iloc[0] == "Senior Management"

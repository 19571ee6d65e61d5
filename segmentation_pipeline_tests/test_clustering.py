"""Clustering: every method on planted, well-separated customer segments."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from segmentation_pipeline.clustering import (
    DEFAULT_FEATURES,
    METHODS,
    ClusteringSettings,
    ModelBundle,
    run_feature_sets,
    run_method,
    unavailable_feature_sets,
)
from segmentation_pipeline.clustering.assignments import assignments_table, table_positions
from segmentation_pipeline.clustering.bundle import BUNDLE_FORMAT_VERSION
from segmentation_pipeline.clustering.gmm import GaussianMixtureMethod
from segmentation_pipeline.clustering.runner import clustered_columns
from segmentation_pipeline.clustering.metrics import SilhouetteScorer
from segmentation_pipeline.clustering.selection import elbow_index, sample_rows
from segmentation_pipeline.errors import InputDataError

K_METHODS = ("kmeans", "gmm", "fuzzy_cmeans", "autoencoder_kmeans")
# Planted segments in original units; sizes differ so that "label 0 = largest" is testable.
SEGMENTS = pd.DataFrame(
    {
        "size": [150, 120, 90, 60],
        "recency_days": [10.0, 15.0, 300.0, 60.0],
        "frequency": [40.0, 2.0, 5.0, 12.0],
        "monetary": [4000.0, 120.0, 300.0, 900.0],
        "avg_order_value": [100.0, 60.0, 60.0, 75.0],
        "tenure_months": [48.0, 2.0, 30.0, 18.0],
        "return_rate": [0.02, 0.01, 0.10, 0.35],
    }
)
SETTINGS = ClusteringSettings(bootstraps=3)


def planted_customers(seed: int = 0, scale: float = 1.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers around the planted segments: multiplicative noise on counts and money (they are
    log1p-transformed), additive noise on the rest, so the segments stay apart after preparation."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(SEGMENTS)), (SEGMENTS["size"] * scale).round().astype(int))
    centre = SEGMENTS.iloc[truth]
    n = len(truth)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed}-{i:04d}" for i in range(n)],
            "recency_days": (centre["recency_days"].to_numpy() * rng.lognormal(0, 0.12, n)).round() + 1,
            "frequency": (centre["frequency"].to_numpy() * rng.lognormal(0, 0.12, n)).round().clip(1),
            "monetary": centre["monetary"].to_numpy() * rng.lognormal(0, 0.15, n),
            "avg_order_value": centre["avg_order_value"].to_numpy() * rng.lognormal(0, 0.1, n),
            "tenure_months": centre["tenure_months"].to_numpy() + rng.normal(0, 1.5, n).clip(-1.9),
            "return_rate": (centre["return_rate"].to_numpy() + rng.normal(0, 0.01, n)).clip(0, 1),
        }
    )
    order = rng.permutation(n)  # customers arrive in no particular order
    return frame.iloc[order].reset_index(drop=True), truth[order]


PLANTED, TRUTH = planted_customers()
_RESULTS: dict = {}


def result_of(method: str):
    """Each method is fitted once on the planted customers and shared by the tests."""
    if method not in _RESULTS:
        _RESULTS[method] = run_method(method, PLANTED, SETTINGS)
    return _RESULTS[method]


@pytest.mark.parametrize("method", METHODS)
def test_recovers_planted_segments(method):
    result = result_of(method)
    assert result.method == method
    assert result.n_clusters == 4
    assert adjusted_rand_score(TRUTH, result.labels) >= 0.9
    assert list(result.customer_ids) == list(PLANTED["customer_id"])
    assert set(np.unique(result.labels)) == set(range(4))
    assert result.prepared.shape == (len(PLANTED), len(DEFAULT_FEATURES))
    assert result.features_used == list(DEFAULT_FEATURES)


@pytest.mark.parametrize("method", K_METHODS)
def test_auto_k_finds_the_planted_k(method):
    curve = result_of(method).selection_curve
    assert curve["chosen_k"] == 4
    assert curve["k"] == list(range(2, 11))
    assert len(curve["score"]) == len(curve["k"])
    assert curve["criterion"] == ("bic" if method == "gmm" else "silhouette")
    assert result_of(method).params["k_source"] == "auto"


def test_labels_are_ordered_by_cluster_size():
    sizes = np.bincount(result_of("kmeans").labels)
    assert list(sizes) == sorted(sizes, reverse=True) == [150, 120, 90, 60]


@pytest.mark.parametrize("method", METHODS)
def test_shared_metrics_and_parameters(method):
    result = result_of(method)
    for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari_mean", "stability_ari_min"):
        assert isinstance(result.metrics[name], float), name
    assert result.metrics["silhouette"] > 0.5
    assert 0.9 <= result.metrics["stability_ari_min"] <= result.metrics["stability_ari_mean"] <= 1.0
    assert result.metrics["fit_seconds"] >= 0
    preparation = result.params["preparation"]
    assert preparation["log1p"] == ["frequency", "monetary", "avg_order_value"]
    assert preparation["scaler"] == "StandardScaler"
    assert result.params["seed"] == SETTINGS.seed


def test_gmm_metrics_and_extras():
    result = result_of("gmm")
    metrics = result.metrics
    assert metrics["bic"] > metrics["aic"]  # BIC penalises parameters harder once n > e^2
    mixture = result.bundle.model.mixture
    assert metrics["avg_log_likelihood"] == pytest.approx(mixture.score(result.prepared))
    assert metrics["converged"] is True and metrics["n_iter"] >= 1
    np.testing.assert_allclose(result.memberships.sum(axis=1), 1.0)
    weights = result.root_extras["mixture_weights"]
    assert weights == sorted(weights, reverse=True) and sum(weights) == pytest.approx(1.0)
    uncertainty = result.root_extras["uncertainty_metrics"]
    assert uncertainty["high_confidence_count"] + uncertainty["low_confidence_count"] <= len(PLANTED)
    assert uncertainty["avg_max_probability"] > 0.9
    for label in range(4):
        extra = result.cluster_extras[label]
        assert extra["mixture_weight"] == pytest.approx(weights[label])
        assert set(extra["probability_stats"]) == {"mean", "std", "min", "max", "median"}
        assert extra["covariance_info"]["type"] == "spherical"
        assert list(extra["covariance_info"]["feature_variances"]) == list(DEFAULT_FEATURES)


def test_fuzzy_cmeans_metrics_and_extras():
    result = result_of("fuzzy_cmeans")
    memberships = result.memberships
    np.testing.assert_allclose(memberships.sum(axis=1), 1.0)
    expected_coefficient = (memberships**2).sum(axis=1).mean()
    assert result.metrics["partition_coefficient"] == pytest.approx(expected_coefficient)
    assert 1 / 4 < result.metrics["partition_coefficient"] <= 1
    assert 0 <= result.metrics["partition_entropy"] < np.log(4)
    assert np.array_equal(result.labels, memberships.argmax(axis=1))
    for label in range(4):
        stats = result.cluster_extras[label]["membership_stats"]
        assert set(stats) == {"mean", "std", "min", "max"}
        assert 0 < stats["min"] <= stats["mean"] <= stats["max"] <= 1


def test_autoencoder_metrics_and_extras():
    result = result_of("autoencoder_kmeans")
    assert result.memberships is None
    assert 0 <= result.metrics["reconstruction_error"] < 1.0
    assert result.params["hidden_layer_sizes"] == [16, 4, 16]
    for label in range(4):
        stats = result.cluster_extras[label]["encoded_space_stats"]
        assert stats["mean_distance_to_center"] >= 0 and stats["std_distance_to_center"] >= 0


def test_hdbscan_assigns_every_customer_and_reports_noise():
    outliers = pd.DataFrame(
        {
            "customer_id": [f"X{i}" for i in range(4)],
            "recency_days": [700.0, 1.0, 500.0, 5.0],
            "frequency": [300.0, 1.0, 150.0, 80.0],
            "monetary": [90000.0, 5.0, 20.0, 50000.0],
            "avg_order_value": [900.0, 5.0, 400.0, 2.0],
            "tenure_months": [100.0, 90.0, 0.0, 70.0],
            "return_rate": [0.9, 0.8, 0.0, 0.6],
        }
    )
    customers = pd.concat([PLANTED, outliers], ignore_index=True)
    result = run_method("hdbscan", customers, SETTINGS)
    assert result.labels.min() >= 0 and result.n_clusters == 4
    assert result.metrics["noise_count"] >= len(outliers)
    assert result.metrics["noise_share"] == pytest.approx(result.metrics["noise_count"] / len(customers))
    reassigned = sum(extra["reassigned_noise_count"] for extra in result.cluster_extras.values())
    assert reassigned == result.metrics["noise_count"]
    assert result.noise.sum() == result.metrics["noise_count"] and result.noise[len(PLANTED) :].all()
    table = assignments_table(result)
    assert table["noise"].tolist() == result.noise.tolist() and "noise" not in assignments_table(result_of("kmeans"))
    assert adjusted_rand_score(TRUTH, result.labels[: len(PLANTED)]) >= 0.9

    kept = run_method("hdbscan", customers, dataclasses.replace(SETTINGS, assign_noise="keep"))
    noise = kept.labels == -1
    assert noise.sum() == kept.metrics["noise_count"] and noise[len(PLANTED) :].all()
    assert np.array_equal(kept.labels[~noise], result.labels[~noise])
    assert np.array_equal(kept.bundle.predict(customers).labels, kept.labels)


@pytest.mark.parametrize("method", METHODS)
def test_predict_reproduces_training_labels_and_segments_new_customers(method):
    result = result_of(method)
    prediction = result.bundle.predict(PLANTED)
    assert np.array_equal(prediction.labels, result.labels)
    assert prediction.confidence.shape == (len(PLANTED),)
    assert ((prediction.confidence >= 0) & (prediction.confidence <= 1)).all()
    if result.memberships is not None:
        np.testing.assert_array_equal(prediction.memberships, result.memberships)

    new_customers, new_truth = planted_customers(seed=7, scale=0.2)
    new_labels = result.bundle.predict(new_customers.drop(columns="customer_id")).labels
    label_of_segment = pd.Series(result.labels).groupby(TRUTH).agg(lambda s: s.mode()[0])
    assert (new_labels == label_of_segment[new_truth].to_numpy()).mean() >= 0.95


@pytest.mark.parametrize("method", METHODS)
def test_bundle_save_load_round_trip(method, tmp_path):
    bundle = result_of(method).bundle
    path = bundle.save(tmp_path / f"{method}.joblib")
    loaded = ModelBundle.load(path)
    before, after = bundle.predict(PLANTED), loaded.predict(PLANTED)
    assert np.array_equal(before.labels, after.labels)
    assert np.array_equal(before.confidence, after.confidence)
    assert loaded.features == list(DEFAULT_FEATURES)
    assert loaded.transform.log1p_features == ("frequency", "monetary", "avg_order_value")
    assert loaded.method == method and loaded.version.endswith(f"/bundle-{BUNDLE_FORMAT_VERSION}")
    assert datetime.fromisoformat(loaded.trained_at).utcoffset().total_seconds() == 0


def test_bundle_load_refuses_other_versions(tmp_path):
    path = result_of("kmeans").bundle.save(tmp_path / "kmeans.joblib")
    envelope = joblib.load(path)
    joblib.dump({**envelope, "format_version": 99}, path)
    with pytest.raises(ValueError, match="format version 99"):
        ModelBundle.load(path)
    joblib.dump({**envelope, "format_version": BUNDLE_FORMAT_VERSION, "library_versions": {"scikit-learn": "0.1"}}, path)
    with pytest.raises(ValueError, match="scikit-learn 0.1"):
        ModelBundle.load(path)
    joblib.dump({"something": "else"}, path)
    with pytest.raises(ValueError, match="not a"):
        ModelBundle.load(path)


@pytest.mark.parametrize("method", METHODS)
def test_same_data_and_seed_give_identical_results(method):
    first, second = result_of(method), run_method(method, PLANTED, SETTINGS)
    assert np.array_equal(first.labels, second.labels)
    if first.memberships is not None:
        assert np.array_equal(first.memberships, second.memberships)
    drop_time = lambda metrics: {k: v for k, v in metrics.items() if k != "fit_seconds"}  # noqa: E731
    assert drop_time(first.metrics) == drop_time(second.metrics)
    assert first.selection_curve == second.selection_curve
    assert first.cluster_extras == second.cluster_extras and first.root_extras == second.root_extras


@pytest.mark.parametrize("method", K_METHODS)
def test_fixed_k_is_respected(method):
    result = run_method(method, PLANTED, ClusteringSettings(k=3, bootstraps=0))
    assert result.n_clusters == 3 and set(result.labels) == {0, 1, 2}
    assert result.params["k_source"] == "fixed" and result.selection_curve is None
    assert result.metrics["stability_ari_mean"] is None


def test_k_bounds_are_respected():
    result = run_method("kmeans", PLANTED, ClusteringSettings(k_min=5, k_max=7, bootstraps=0))
    assert result.selection_curve["k"] == [5, 6, 7]
    assert 5 <= result.n_clusters <= 7
    with pytest.raises(ValueError, match="k must be 'auto' or an integer in 2..6"):
        ClusteringSettings(k=8, k_max=6)
    with pytest.raises(ValueError, match="k_min <= k_max"):
        ClusteringSettings(k_min=5, k_max=4)


def test_per_method_overrides():
    settings = ClusteringSettings(overrides={"gmm": {"k": 3, "gmm_covariance_type": "diag"}})
    assert settings.for_method("gmm").k == 3 and settings.for_method("kmeans").k == "auto"
    gmm = run_method("gmm", PLANTED, dataclasses.replace(settings, bootstraps=0))
    assert gmm.n_clusters == 3 and gmm.cluster_extras[0]["covariance_info"]["type"] == "diag"
    with pytest.raises(ValueError, match="unknown settings"):
        ClusteringSettings(overrides={"gmm": {"n_components": 3}})
    with pytest.raises(ValueError, match="unknown method"):
        ClusteringSettings(overrides={"dbscan": {"k": 3}})


def test_missing_feature_column_is_named():
    with pytest.raises(InputDataError, match="'tenure_months'") as error:
        run_method("kmeans", PLANTED.drop(columns="tenure_months"), SETTINGS)
    assert isinstance(error.value, ValueError)
    with pytest.raises(InputDataError, match="'customer_id'"):
        run_method("kmeans", PLANTED.drop(columns="customer_id"), SETTINGS)
    with pytest.raises(InputDataError, match="'monetary'"):
        result_of("kmeans").bundle.predict(PLANTED.drop(columns="monetary"))


def test_bad_feature_values_are_named():
    broken = PLANTED.assign(return_rate=PLANTED["return_rate"].where(PLANTED.index != 3))
    with pytest.raises(InputDataError, match=r"'return_rate' \(1 rows\)"):
        run_method("kmeans", broken, SETTINGS)
    with pytest.raises(InputDataError, match="'frequency' is not numeric"):
        run_method("kmeans", PLANTED.assign(frequency="many"), SETTINGS)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown clustering method 'dbscan'"):
        run_method("dbscan", PLANTED, SETTINGS)


def test_silhouette_scorer_matches_scikit_learn():
    rng = np.random.default_rng(3)
    sample = rng.normal(size=(300, 4))
    labels = rng.integers(0, 4, size=300)
    labels[:2] = 5  # a singleton-free small group
    labels[2] = 6  # a singleton scores 0
    assert SilhouetteScorer(sample).score(labels) == pytest.approx(silhouette_score(sample, labels), abs=1e-6)
    assert SilhouetteScorer(sample).score(np.zeros(300, dtype=int)) is None


def test_samples_are_nested_and_depend_on_seed_and_n_only():
    large, small = sample_rows(1000, 400, seed=5), sample_rows(1000, 100, seed=5)
    assert set(small) <= set(large) and len(large) == 400 and np.all(np.diff(large) > 0)
    assert np.array_equal(sample_rows(1000, 400, seed=5), large)
    assert np.array_equal(sample_rows(50, 400, seed=5), np.arange(50))


def test_gmm_choice_rule():
    gmm = GaussianMixtureMethod()
    assert gmm.choose([2, 3, 4, 5], [100.0, 80.0, 70.0, 75.0]) == (4, "min")
    falling = [1000.0, 500.0, 300.0, 280.0, 270.0, 262.0, 256.0]  # keeps falling: elbow at k=4
    assert gmm.choose(list(range(2, 9)), falling) == (4, "elbow")
    assert elbow_index([10.0, 8.0, 6.0, 4.0]) == 3  # a straight fall has no elbow


def test_settings_validation():
    with pytest.raises(ValueError, match="assign_noise"):
        ClusteringSettings(assign_noise="drop")
    with pytest.raises(ValueError, match="fuzziness"):
        ClusteringSettings(fuzziness=1.0)
    with pytest.raises(ValueError, match="gmm_covariance_type"):
        ClusteringSettings(gmm_covariance_type="banded")
    settings = ClusteringSettings(features=["recency_days", "monetary"], k=np.int64(3), bootstraps=0)
    assert settings.features == ("recency_days", "monetary") and type(settings.k) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.k = 4  # type: ignore[misc]
    result = run_method("kmeans", PLANTED, settings)
    assert result.features_used == ["recency_days", "monetary"]
    assert result.params["preparation"]["log1p"] == ["monetary"]  # log1p only of clustered columns


def with_purchase_mix(frame: pd.DataFrame, truth: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Planted customers plus department spend: each planted segment buys mostly one department."""
    rng = np.random.default_rng(seed)
    departments = ["Garden", "Grocery", "Toys", "Fashion"]
    favourite = np.eye(len(departments))[truth] * 0.7 + 0.1
    spend = favourite * frame["monetary"].to_numpy()[:, None] * rng.uniform(0.8, 1.2, favourite.shape)
    return frame.assign(**{f"dept_value:{name}": spend[:, i] for i, name in enumerate(departments)})


def test_every_method_fits_both_feature_sets():
    mixed = with_purchase_mix(PLANTED, TRUTH)
    settings = ClusteringSettings(bootstraps=0, mix_components=3)
    for method in METHODS:
        runs, not_run = run_feature_sets(method, mixed, settings)
        assert not_run == {}
        assert list(runs) == ["behaviour", "behaviour_mix"]
        plain, mix = runs["behaviour"], runs["behaviour_mix"]
        assert (plain.feature_set, mix.feature_set) == ("behaviour", "behaviour_mix")
        assert mix.run_label == f"{method}/behaviour_mix"
        assert plain.prepared.shape[1] == len(DEFAULT_FEATURES)
        assert mix.prepared.shape[1] == len(DEFAULT_FEATURES) + 3
        assert adjusted_rand_score(TRUTH, mix.labels) >= 0.9, method
        assert mix.features_used == list(DEFAULT_FEATURES)  # what profiles describe
        assert mix.params["feature_set"] == "behaviour_mix"
        assert mix.params["preparation"]["purchase_mix"]["components"] == 3


def test_purchase_mix_block_weighs_as_much_as_the_behaviour_block_and_predicts_alike():
    mixed = with_purchase_mix(PLANTED, TRUTH)
    result = run_method("kmeans", mixed, ClusteringSettings(bootstraps=0, mix_weight=0.5), "behaviour_mix")
    behaviour, mix = result.prepared[:, : len(DEFAULT_FEATURES)], result.prepared[:, len(DEFAULT_FEATURES):]
    assert mix.var(axis=0).sum() == pytest.approx(0.5 * behaviour.var(axis=0).sum())
    assert result.bundle.features == list(DEFAULT_FEATURES) + [c for c in mixed if c.startswith("dept_value:")]
    np.testing.assert_array_equal(result.bundle.predict(mixed.iloc[::-1]).labels, result.labels[::-1])
    with pytest.raises(InputDataError, match="'dept_value:Toys'"):
        result.bundle.predict(mixed.drop(columns="dept_value:Toys"))


def test_preparation_is_fitted_on_the_fit_sample_and_applied_to_everyone_in_chunks():
    mixed = with_purchase_mix(PLANTED, TRUTH)
    settings = ClusteringSettings(bootstraps=0, fit_sample_size=150, mix_components=3)
    result = run_method("kmeans", mixed, settings, "behaviour_mix")
    fitted = mixed.iloc[sample_rows(len(mixed), 150, settings.seed)]
    transform = result.bundle.transform  # monetary is log1p-ed, then scaled by the fitted customers' statistics
    assert transform.scaler.mean_[list(DEFAULT_FEATURES).index("monetary")] == pytest.approx(np.log1p(fitted["monetary"]).mean())
    assert transform.scaler.mean_[0] != pytest.approx(mixed[DEFAULT_FEATURES[0]].mean())
    np.testing.assert_array_equal(result.prepared, transform.transform(mixed))
    np.testing.assert_array_equal(transform.transform(mixed, chunk_rows=7), transform.transform(mixed))
    np.testing.assert_array_equal(result.bundle.predict(mixed).labels, result.labels)


def test_clustered_columns_are_the_id_the_features_and_the_mix_columns_in_table_order():
    mixed = with_purchase_mix(PLANTED, TRUTH).assign(segment="x", **{"dept_units:Toys": 1})
    both = ClusteringSettings()
    expected = ["customer_id", *DEFAULT_FEATURES, "dept_value:Garden", "dept_value:Grocery", "dept_value:Toys", "dept_value:Fashion"]
    assert clustered_columns(list(mixed.columns), both) == expected
    assert clustered_columns(list(mixed.columns), ClusteringSettings(feature_sets=["behaviour"])) == expected[:7]
    with pytest.raises(InputDataError, match="missing feature column.*'tenure_months'.*available: customer_id, recency_days"):
        clustered_columns([c for c in mixed.columns if c != "tenure_months"], both)


def test_mix_feature_set_without_spend_columns_is_skipped_with_a_reason():
    settings = ClusteringSettings(bootstraps=0)
    assert unavailable_feature_sets(PLANTED, settings) == {
        "behaviour_mix": "the customer table has no 'dept_value:*' spend columns"
    }
    runs, not_run = run_feature_sets("kmeans", PLANTED, settings)
    assert list(runs) == ["behaviour"] and list(not_run) == ["behaviour_mix"]
    with pytest.raises(InputDataError, match="needs 'dept_value:\\*' spend columns"):
        run_method("kmeans", PLANTED, settings, "behaviour_mix")
    per_method = ClusteringSettings(bootstraps=0, overrides={"kmeans": {"feature_sets": ["behaviour_mix"]}})
    assert list(run_feature_sets("kmeans", with_purchase_mix(PLANTED, TRUTH), per_method)[0]) == ["behaviour_mix"]
    with pytest.raises(ValueError, match="feature_sets must be distinct names"):
        ClusteringSettings(feature_sets=["behaviour", "products"])
    with pytest.raises(ValueError, match="mix_weight"):
        ClusteringSettings(mix_weight=0)


def test_a_method_that_finds_no_structure_is_unsupported_not_a_crash():
    """HDBSCAN on uniform noise finds no dense cluster: the feature set does not run, with the reason,
    and with no feature set left the method is unsupported (the pipeline then skips it)."""
    from segmentation_pipeline.clustering.base import UnsupportedDataError
    from segmentation_pipeline.comparison import method_runs

    rng = np.random.default_rng(0)
    noise = pd.DataFrame({"customer_id": [f"c{i}" for i in range(60)],
                          **{name: rng.uniform(0, 1, 60) for name in ClusteringSettings().features}})
    settings = ClusteringSettings(bootstraps=2, feature_sets=("behaviour",), overrides={"hdbscan": {"min_cluster_size": 25}})
    runs, not_run = run_feature_sets("hdbscan", noise, settings)
    assert runs == {} and "hdbscan found no cluster among 60 customers" in not_run["behaviour"]
    with pytest.raises(UnsupportedDataError, match="behaviour: hdbscan found no cluster"):
        method_runs("hdbscan", noise, settings)


def test_a_table_in_the_clustering_order_is_used_as_it_is_and_any_other_is_reordered():
    clustered = np.array(["10", "11", "9"])  # text order: 10 < 11 < 9
    assert table_positions(clustered, pd.Series(["10", "11", "9"], dtype="str"), "t") is None
    assert table_positions(clustered, pd.Series([10, 11, 9]), "t") is None  # numbers compare as text
    reordered = table_positions(clustered, pd.Series(["9", "12", "11", "10"], dtype="str"), "t")
    assert reordered.tolist() == [3, 2, 0]
    # The same ids in the same order but not increasing are checked in full: repeated ids are refused.
    with pytest.raises(InputDataError, match=r"t: column 'customer_id' has duplicate values, e.g. \['10'\]"):
        table_positions(np.array(["10", "10"]), pd.Series(["10", "10"]), "t")
    with pytest.raises(InputDataError, match=r"t: column 'customer_id' lacks 1 clustered customer\(s\), e.g. \['9'\]"):
        table_positions(clustered, pd.Series(["10", "11", "12"]), "t")

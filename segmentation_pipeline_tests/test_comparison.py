import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.comparison import (
    STABILITY_THRESHOLD,
    STANDARD_METRICS,
    compare_methods,
    comparison_to_dict,
)

N = 60
IDS = np.array([f"C{i:03d}" for i in range(N)])
TRUTH_LABELS = np.arange(N) % 3
TRUTH = pd.Series(np.array(["bargain_hunter", "loyal_family", "big_spender"])[TRUTH_LABELS], index=IDS)


def result(method, labels, ids=IDS, feature_set="behaviour", prepared=None, **metrics):
    """Stand-in with the attributes of a clustering result that the comparison reads."""
    labels = np.asarray(labels)
    defaults = {
        "silhouette": 0.4,
        "davies_bouldin": 1.0,
        "calinski_harabasz": 100.0,
        "stability_ari_mean": 0.9,
        "stability_ari_min": 0.8,
        "fit_seconds": 0.5,
    }
    return SimpleNamespace(
        method=method,
        customer_ids=ids,
        labels=labels,
        n_clusters=int(labels.max()) + 1,
        metrics={**defaults, **metrics},
        feature_set=feature_set,
        prepared=prepared,
    )


def noisy_labels(seed, flip_share=0.3):
    rng = np.random.default_rng(seed)
    labels = TRUTH_LABELS.copy()
    flip = rng.random(N) < flip_share
    labels[flip] = rng.integers(0, 3, flip.sum())
    return labels


def test_table_has_one_row_per_run_with_the_shared_metrics_and_method_metrics_apart():
    results = [
        result("kmeans", TRUTH_LABELS),
        result("gmm", noisy_labels(1), bic=1234.5, fit_seconds=np.float64(1.25)),
        result("hdbscan", noisy_labels(2), noise_share=0.2, noise_count=12),
    ]
    comparison = compare_methods(results, truth=TRUTH)
    table = comparison.table

    assert list(table.columns) == [
        "run", "method", "feature_set", "n_clusters", *STANDARD_METRICS, "ari_vs_truth", "nmi_vs_truth",
    ]
    assert table["run"].tolist() == ["kmeans/behaviour", "gmm/behaviour", "hdbscan/behaviour"]
    assert table["n_clusters"].tolist() == [3, 3, 3]
    assert table.loc[1, "fit_seconds"] == 1.25
    assert table.loc[2, "noise_share"] == 0.2 and table["noise_share"].iloc[:2].isna().all()
    assert comparison.method_metrics == {
        "kmeans/behaviour": {}, "gmm/behaviour": {"bic": 1234.5}, "hdbscan/behaviour": {"noise_count": 12.0},
    }


def test_truth_columns_only_with_truth():
    table = compare_methods([result("kmeans", TRUTH_LABELS)]).table
    assert "ari_vs_truth" not in table.columns and "nmi_vs_truth" not in table.columns


def test_missing_standard_metric_is_nan():
    bare = SimpleNamespace(method="hdbscan", customer_ids=IDS, labels=TRUTH_LABELS, n_clusters=3, metrics={"silhouette": 0.2})
    table = compare_methods([bare]).table
    assert set(STANDARD_METRICS) <= set(table.columns)
    assert np.isnan(table.loc[0, "stability_ari_mean"])


def test_identical_labelling_scores_one_against_truth_even_with_other_label_names():
    permuted = (TRUTH_LABELS + 1) % 3  # same partition, different cluster numbers
    table = compare_methods([result("kmeans", permuted), result("gmm", noisy_labels(3))], truth=TRUTH).table
    assert table.loc[0, "ari_vs_truth"] == pytest.approx(1.0)
    assert table.loc[0, "nmi_vs_truth"] == pytest.approx(1.0)
    assert table.loc[1, "ari_vs_truth"] < 1.0 and table.loc[1, "nmi_vs_truth"] < 1.0


def test_truth_is_aligned_by_customer_id():
    shuffled_truth = TRUTH.sample(frac=1, random_state=7)
    table = compare_methods([result("kmeans", TRUTH_LABELS)], truth=shuffled_truth).table
    assert table.loc[0, "ari_vs_truth"] == pytest.approx(1.0)


def test_pairwise_ari_is_symmetric_with_ones_on_the_diagonal():
    results = [result("kmeans", TRUTH_LABELS), result("gmm", noisy_labels(4)), result("fuzzy_cmeans", noisy_labels(5))]
    matrix = compare_methods(results).pairwise_ari

    runs = ["kmeans/behaviour", "gmm/behaviour", "fuzzy_cmeans/behaviour"]
    assert list(matrix.index) == list(matrix.columns) == runs
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0)
    assert matrix.loc["kmeans/behaviour", "gmm/behaviour"] < 1.0


def test_pairwise_ari_aligns_on_customer_ids():
    order = np.random.default_rng(0).permutation(N)
    reordered = result("gmm", TRUTH_LABELS[order], ids=IDS[order])
    matrix = compare_methods([result("kmeans", TRUTH_LABELS), reordered]).pairwise_ari
    assert matrix.loc["kmeans/behaviour", "gmm/behaviour"] == pytest.approx(1.0)


def test_unstable_method_with_best_silhouette_is_not_recommended():
    results = [
        result("kmeans", TRUTH_LABELS, silhouette=0.45, stability_ari_mean=0.92),
        result("gmm", noisy_labels(6), silhouette=0.60, stability_ari_mean=0.50),
        result("fuzzy_cmeans", noisy_labels(7), silhouette=0.40, stability_ari_mean=0.95),
    ]
    comparison = compare_methods(results)
    assert comparison.recommended == "kmeans"
    assert "silhouette 0.450" in comparison.recommendation_reason
    assert "gmm" in comparison.recommendation_reason and "unstable" in comparison.recommendation_reason


def test_stability_exactly_at_threshold_counts_as_stable():
    results = [
        result("kmeans", TRUTH_LABELS, silhouette=0.5, stability_ari_mean=STABILITY_THRESHOLD),
        result("gmm", TRUTH_LABELS, silhouette=0.3, stability_ari_mean=0.99),
    ]
    assert compare_methods(results).recommended == "kmeans"


def test_no_stable_method_falls_back_to_best_silhouette():
    results = [
        result("kmeans", TRUTH_LABELS, silhouette=0.30, stability_ari_mean=0.70),
        result("gmm", noisy_labels(8), silhouette=0.55, stability_ari_mean=0.40),
    ]
    comparison = compare_methods(results)
    assert comparison.recommended == "gmm"
    assert "none reaches" in comparison.recommendation_reason


@pytest.mark.parametrize(
    "metrics_a, metrics_b, expected",
    [
        ({"stability_ari_mean": 0.80}, {"stability_ari_mean": 0.90}, "b_method"),
        ({"davies_bouldin": 0.7}, {"davies_bouldin": 0.9}, "a_method"),
        ({}, {}, "a_method"),  # full tie -> method name
    ],
)
def test_silhouette_ties_are_broken_by_stability_then_davies_bouldin_then_name(metrics_a, metrics_b, expected):
    results = [
        result("b_method", TRUTH_LABELS, silhouette=0.5, **metrics_b),
        result("a_method", TRUTH_LABELS, silhouette=0.5, **metrics_a),
    ]
    comparison = compare_methods(results)
    assert comparison.recommended == expected
    assert "tie" in comparison.recommendation_reason


def test_ground_truth_does_not_change_the_recommendation():
    results = [
        result("kmeans", noisy_labels(9, 0.9), silhouette=0.5),
        result("gmm", TRUTH_LABELS, silhouette=0.4),
    ]
    assert compare_methods(results, truth=TRUTH).recommended == compare_methods(results).recommended == "kmeans"


def test_comparison_is_deterministic_and_independent_of_input_order():
    results = [
        result("kmeans", TRUTH_LABELS, silhouette=0.42),
        result("gmm", noisy_labels(10), silhouette=0.42, stability_ari_mean=0.95),
        result("autoencoder_kmeans", noisy_labels(11), silhouette=0.3),
    ]
    first, second = compare_methods(results, TRUTH), compare_methods(results, TRUTH)
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.pairwise_ari, second.pairwise_ari)
    assert comparison_to_dict(first) == comparison_to_dict(second)
    reversed_comparison = compare_methods(results[::-1], TRUTH)
    assert reversed_comparison.recommended == first.recommended == "gmm"
    assert reversed_comparison.recommendation_reason == first.recommendation_reason


def test_comparison_to_dict_is_plain_json():
    results = [result("kmeans", TRUTH_LABELS), result("gmm", noisy_labels(12), bic=np.float64(10.5))]
    as_dict = comparison_to_dict(compare_methods(results, truth=TRUTH))

    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert as_dict["recommended"] in {"kmeans", "gmm"}
    assert [row["method"] for row in as_dict["methods"]] == ["kmeans", "gmm"]
    assert as_dict["method_metrics"]["gmm/behaviour"] == {"bic": 10.5}
    assert as_dict["pairwise_ari"]["gmm/behaviour"]["gmm/behaviour"] == 1.0
    pairwise = as_dict["pairwise_ari"]
    assert pairwise["kmeans/behaviour"]["gmm/behaviour"] == pairwise["gmm/behaviour"]["kmeans/behaviour"]
    assert as_dict["preferred_feature_sets"] == {"kmeans": "behaviour", "gmm": "behaviour"}
    assert as_dict["stability_threshold"] == STABILITY_THRESHOLD


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="at least one"):
        compare_methods([])
    with pytest.raises(ValueError, match="unique"):
        compare_methods([result("kmeans", TRUTH_LABELS), result("kmeans", TRUTH_LABELS)])


def test_feature_sets_are_judged_in_the_shared_space_and_each_method_gets_its_preferred_set():
    """Own-space silhouettes favour the narrow space; in the wide space the run that follows the
    purchase mix separates better, so it is recommended and preferred for its method."""
    rng = np.random.default_rng(0)
    behaviour = rng.normal(size=(N, 2))
    mix = np.eye(3)[TRUTH_LABELS] * 4 + rng.normal(scale=0.3, size=(N, 3))
    wide = np.hstack([behaviour, mix])
    by_behaviour = (behaviour[:, 0] > 0).astype(int)
    results = [
        result("kmeans", by_behaviour, prepared=behaviour, silhouette=0.6),
        result("kmeans", TRUTH_LABELS, feature_set="behaviour_mix", prepared=wide, silhouette=0.5),
        result("gmm", by_behaviour, prepared=behaviour, silhouette=0.6),
    ]
    comparison = compare_methods(results)
    table = comparison.table.set_index("run")
    assert table.loc["kmeans/behaviour_mix", "silhouette_shared"] > table.loc["kmeans/behaviour", "silhouette_shared"]
    assert table.loc["kmeans/behaviour", "silhouette"] == 0.6  # the own-space figure stays reported
    assert comparison.recommended_run == "kmeans/behaviour_mix"
    assert comparison.preferred_feature_sets == {"kmeans": "behaviour_mix", "gmm": "behaviour"}
    assert comparison.shared_space.startswith("kmeans/behaviour_mix (5 prepared columns")


def test_without_a_shared_space_runs_are_ranked_by_their_own_silhouette():
    results = [
        result("kmeans", TRUTH_LABELS, prepared=np.zeros((N, 2)), silhouette=0.3),
        result("gmm", TRUTH_LABELS, ids=IDS[::-1], prepared=np.zeros((N, 2)), silhouette=0.5),
    ]
    comparison = compare_methods(results)
    assert comparison.recommended == "gmm" and "different customers" in comparison.shared_space

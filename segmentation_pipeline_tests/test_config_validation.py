"""The config is checked completely at load, and each error names the one key that is wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.config import load_config, parse_config
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.retail.cleaning import CleaningRules


def error_lines(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(data, source="pipeline.yml")
    first, *problems = str(error.value).splitlines()
    if not problems:  # one problem: one line naming the file and the key
        assert first.startswith("pipeline.yml: ")
        return [first.removeprefix("pipeline.yml: ")]
    assert first.startswith("pipeline.yml: invalid configuration (")
    return [problem.strip() for problem in problems]


@pytest.mark.parametrize(
    ("clustering", "expected"),
    [
        ({"methods": {"gmm": {"gmm_covariance_type": "bogus"}}},
         "clustering.methods.gmm.gmm_covariance_type: must be one of full, tied, diag, spherical (got 'bogus')"),
        ({"methods": {"hdbscan": {"min_cluster_size": 1}}},
         "clustering.methods.hdbscan.min_cluster_size: must be null (automatic) or at least 2 (got 1)"),
        ({"methods": {"fuzzy_cmeans": {"fuzziness": 1}}}, "clustering.methods.fuzzy_cmeans.fuzziness: must be > 1 (got 1)"),
        ({"methods": {"gmm": {"bogus": 1}}}, "clustering.methods.gmm: unknown setting 'bogus' (allowed: features,"),
        ({"methods": {"kmeans": {"features": None}}}, "clustering.methods.kmeans.features: must not be null (got None)"),
        ({"methods": {"gmm": {"k_max": 3}}, "k": 5},
         "clustering.methods.gmm: k must be 'auto' or an integer in 2..3, got 5 (got {'k_max': 3})"),
        ({"methods": []}, "clustering.methods: names the methods to run, so it cannot be empty"),
        ({"methods": {}}, "clustering.methods: names the methods to run, so it cannot be empty"),
        ({"methods": ["kmeans", "kmeans"]}, "clustering.methods: lists a method twice"),
        ({"methods": ["kmeans", "dbscan"]}, "clustering.methods.dbscan.[key]: Input should be 'kmeans', 'gmm'"),
        ({"k": 12}, "clustering.k: must be 'auto' or an integer in 2..10 (got 12)"),
        ({"k": "five"}, "clustering.k: must be 'auto' or an integer (got 'five')"),
        ({"k_min": 5, "k_max": 3}, "clustering.k_max: must be at least k_min=5 (need 2 <= k_min <= k_max) (got 3)"),
        ({"bootstraps": -1}, "clustering.bootstraps: must be >= 0 (got -1)"),
        ({"features": ["recency", "frequency"]}, "clustering.features: 'recency': not a numeric column of the customer"),
        ({"log1p_features": ["class_value:Tools"]}, "clustering.log1p_features: 'class_value:Tools': not a numeric"),
        ({"features": "frequency"}, "clustering.features: Input should be a valid tuple (got 'frequency')"),
        ({"kmeans_n_init": 2.5}, "clustering.kmeans_n_init: Input should be a valid integer"),
        ({"bogus": 1}, "clustering.bogus: unknown key (allowed: features, log1p_features, feature_sets"),
    ],
)  # fmt: skip
def test_a_clustering_error_names_the_one_key(clustering, expected):
    [problem] = error_lines({"clustering": clustering})
    assert problem.startswith(expected)
    assert repr(clustering) not in problem  # the key and its value, never the whole section


def test_methods_as_a_list_or_a_mapping_name_the_enabled_methods():
    as_list = parse_config({"clustering": {"methods": ["hdbscan", "kmeans"]}})
    assert as_list.clustering.enabled_methods() == ("kmeans", "hdbscan")  # canonical order
    assert as_list.clustering_settings().overrides == {"hdbscan": {}, "kmeans": {}}
    as_mapping = parse_config({"clustering": {"methods": {"gmm": {"gmm_covariance_type": "tied"}, "kmeans": None}}})
    assert as_mapping.clustering.enabled_methods() == ("kmeans", "gmm")
    settings = as_mapping.clustering_settings()
    assert settings.overrides == {"gmm": {"gmm_covariance_type": "tied"}, "kmeans": {}}
    assert settings.for_method("gmm").gmm_covariance_type == "tied"
    assert parse_config({}).clustering.enabled_methods() == tuple(METHODS)


def test_an_override_set_to_null_means_automatic():
    config = parse_config({"clustering": {"min_cluster_size": 40, "methods": {"hdbscan": {"min_cluster_size": None}}}})
    assert config.clustering_settings().for_method("hdbscan").min_cluster_size is None


def test_department_features_are_patterns():
    config = parse_config({"clustering": {"features": ["frequency", "dept_value:Home", "dept_units:Garden"]}})
    assert config.clustering_settings().features == ("frequency", "dept_value:Home", "dept_units:Garden")


def test_several_problems_are_all_reported():
    problems = error_lines({"clustering": {"k": 12, "methods": {"gmm": {"gmm_covariance_type": "x"}}}})
    assert [p.split(":")[0] for p in problems] == ["clustering.k", "clustering.methods.gmm.gmm_covariance_type"]


def test_the_shipped_config_loads_with_every_method_enabled():
    config = load_config()
    assert config.clustering.enabled_methods() == tuple(METHODS)
    assert config.clustering_settings().for_method("fuzzy_cmeans").fuzziness == 2.0


def test_cleaning_keys_default_and_validate():
    rules = parse_config({}).transactions.cleaning_rules()
    assert rules == CleaningRules()
    config = parse_config({"transactions": {"earliest_timestamp": "2005-01-01", "placeholder_customer_ids": ["guest"],
                                            "max_line_amount": 5000, "amount_mismatch_tolerance": 0.1}})  # fmt: skip
    rules = config.transactions.cleaning_rules()
    assert rules.earliest_timestamp == pd.Timestamp("2005-01-01") and rules.placeholder_customer_ids == ("guest",)
    assert (rules.max_line_amount, rules.amount_mismatch_tolerance) == (5000, 0.1)
    assert config.transactions.max_rejected_share == 0.05 and config.transactions.rejected_reason_warning_share == 0.005
    [problem] = error_lines({"transactions": {"max_rejected_share": 1.5}})
    assert problem.startswith("transactions.max_rejected_share: Input should be less than or equal to 1")
    [problem] = error_lines({"transactions": {"earliest_timestamp": "soon"}})
    assert problem.startswith("transactions.earliest_timestamp: Input should be a valid date")

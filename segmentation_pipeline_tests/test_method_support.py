"""Whether the data can support a clustering method, decided before any model is fitted."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.clustering import METHODS, ClusteringSettings, run_method
from segmentation_pipeline.clustering.support import method_support
from segmentation_pipeline.errors import InputDataError

SETTINGS = ClusteringSettings(bootstraps=0)


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    """Two well-separated groups, so a method fails only for want of customers."""
    rng = np.random.default_rng(seed)
    columns = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_months", "return_rate")
    centre = np.where(np.arange(n) % 2 == 0, 10.0, 100.0)
    values = {c: centre * rng.lognormal(0, 0.05, n) for c in columns}
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], **values})


@pytest.mark.parametrize("method", list(METHODS))
def test_enough_customers_support_every_method(method):
    assert method_support(500, SETTINGS, method) is None


def test_too_few_customers_for_the_smallest_k():
    assert method_support(2, SETTINGS, "kmeans") == (
        "kmeans tries k from k_min=2, which needs at least 3 customers; the data has 2"
    )
    assert method_support(3, SETTINGS, "kmeans") is None
    fixed = dataclasses.replace(SETTINGS, k=5)
    assert method_support(5, fixed, "gmm") == "gmm with k=5 needs at least 6 customers; the data has 5"
    sampled = dataclasses.replace(fixed, silhouette_sample_size=4)
    assert "silhouette_sample_size limits it to 4 of the 100 customers" in method_support(100, sampled, "kmeans")


def test_overrides_of_the_method_count():
    settings = dataclasses.replace(SETTINGS, overrides={"gmm": {"k": 8, "k_min": 8, "k_max": 8}})
    assert method_support(8, settings, "gmm").startswith("gmm with k=8 needs at least 9 customers")
    assert method_support(8, settings, "kmeans") is None


def test_hdbscan_needs_two_clusters_of_the_minimum_size():
    assert method_support(19, SETTINGS, "hdbscan") == (
        "hdbscan needs at least 20 customers (two clusters of min_cluster_size 10); the data has 19"
    )
    assert method_support(20, SETTINGS, "hdbscan") is None
    larger = dataclasses.replace(SETTINGS, min_cluster_size=30)
    assert method_support(59, larger, "hdbscan").startswith("hdbscan needs at least 60 customers")


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown clustering method 'dbscan'"):
        method_support(100, SETTINGS, "dbscan")


def test_the_verdict_matches_what_the_driver_can_do():
    """At the boundary the methods run when supported, and fail when not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method, n in (("kmeans", 3), ("hdbscan", 20)):
            assert method_support(n, SETTINGS, method) is None
            run_method(method, customers(n), SETTINGS)
            assert method_support(n - 1, SETTINGS, method) is not None
            with pytest.raises((InputDataError, ValueError)):
                run_method(method, customers(n - 1), SETTINGS)


def test_warnings_while_fitting_are_counted_not_printed(recwarn):
    """Two distinct customers for k=4: k-means warns on every fit (selection, final, bootstraps)."""
    twins = customers(40).assign(**{c: v for c, v in customers(2).drop(columns="customer_id").iloc[0].items()})
    twins.loc[::2, "frequency"] = 1.0
    settings = dataclasses.replace(SETTINGS, k=4, k_min=2, k_max=4, bootstraps=2)
    result = run_method("kmeans", twins, settings)
    assert len(recwarn) == 0
    [(message, count)] = result.warnings.items()
    assert message.startswith("ConvergenceWarning: Number of distinct clusters (2) found smaller than n_clusters (4)")
    assert count >= 3
    assert run_method("kmeans", customers(60), SETTINGS).warnings == {}

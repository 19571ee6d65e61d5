"""Conversion per cluster: counts, Wilson intervals, lift, tiers, small clusters flagged."""

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline.leads.checks import conversion_problems
from segmentation_pipeline.leads.conversion import conversion_by_cluster, wilson_interval
from segmentation_pipeline.leads.settings import LeadsSettings


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval([5, 0, 10], [10, 10, 10])
    assert low == pytest.approx([0.2366, 0.0, 0.7225], abs=1e-4)
    assert high == pytest.approx([0.7634, 0.2775, 1.0], abs=1e-4)
    assert wilson_interval([0], [0]) == (pytest.approx([0.0]), pytest.approx([1.0]))


def test_rates_lift_tiers_and_small_clusters():
    # cluster 0: 60/100, cluster 1: 30/100, cluster 2: 12/200, cluster 3: 1/40 (below 50 leads)
    labels = np.repeat([0, 1, 2, 3], [100, 100, 200, 40])
    is_sale = np.concatenate([np.arange(100) < 60, np.arange(100) < 30, np.arange(200) < 12, np.arange(40) < 1])
    settings = LeadsSettings(min_cluster_size=50)
    table = conversion_by_cluster(labels, is_sale, 4, settings)
    assert table["conversions"].tolist() == [60, 30, 12, 1]
    assert table["non_conversions"].tolist() == [40, 70, 188, 39]
    assert table["conversion_rate"].tolist() == pytest.approx([0.6, 0.3, 0.06, 0.025])
    assert table["value_tier"].tolist() == ["PREMIUM", "HIGH", "LOW", None]
    assert table["small_sample"].tolist() == [False, False, False, True]
    assert table["lift"].tolist() == pytest.approx(np.array([0.6, 0.3, 0.06, 0.025]) / (103 / 440))
    clean = pd.DataFrame({"is_sale": is_sale})
    assert conversion_problems(table, clean) == []


def test_conversion_problems_catch_counts_that_do_not_add_up():
    labels = np.repeat([0, 1], [10, 10])
    is_sale = np.arange(20) % 2 == 0
    table = conversion_by_cluster(labels, is_sale, 2, LeadsSettings())
    broken = table.assign(non_conversions=table["non_conversions"] + [1, 0])
    problems = conversion_problems(broken, pd.DataFrame({"is_sale": is_sale[:-1]}))
    assert any("cluster 0: conversions 5 + non-conversions 6 != total 10" in p for p in problems)
    assert any("not 19 clean leads" in p for p in problems)

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline import charts
from segmentation_pipeline.retail.personas import build_personas
from segmentation_pipeline.report import build_report, report_references, write_report

TOYS = '<b>Toys & "Games"</b>'  # a department name that must be escaped everywhere


def stand_in(method, labels, seed):
    rng = np.random.default_rng(seed)
    k = int(labels.max()) + 1
    return SimpleNamespace(
        method=method,
        customer_ids=np.array([f"C{i:04d}" for i in range(len(labels))]),
        labels=labels,
        memberships=None,
        n_clusters=k,
        prepared=rng.normal(size=(k, 4))[labels] * 4 + rng.normal(size=(len(labels), 4)),
        selection_curve=None,
    )


@pytest.fixture(scope="module")
def inputs():
    n = 150
    rng = np.random.default_rng(0)
    kmeans = stand_in("kmeans", np.arange(n) % 3, seed=1)
    gmm = stand_in("gmm", (np.arange(n) // 50) % 2, seed=2)
    features = pd.DataFrame({
        "customer_id": kmeans.customer_ids,
        "recency_days": rng.integers(1, 400, n),
        "frequency": rng.integers(1, 20, n),
        "monetary": rng.lognormal(5, 1, n) * (1 + 3 * (kmeans.labels == 0)),
        "avg_order_value": rng.uniform(10, 90, n),
        "return_rate": rng.uniform(0, 0.2, n),
        "r_score": rng.integers(1, 6, n),
        "f_score": rng.integers(1, 6, n),
        "m_score": rng.integers(1, 6, n),
        "segment": np.array(["champions", "at_risk", "new_customers"])[kmeans.labels],
        f"dept_value:{TOYS}": 100.0 * (kmeans.labels == 0),
        "dept_value:Home": 50.0,
        "country": "United Kingdom",
    })
    rows = [
        {"method": "kmeans", "n_clusters": 3, "silhouette": 0.52, "stability_ari_mean": 0.95,
         "davies_bouldin": 0.7},
        {"method": "gmm", "n_clusters": 2, "silhouette": 0.31, "stability_ari_mean": 0.8,
         "davies_bouldin": 1.1},
    ]
    comparison = {
        "recommended": "kmeans",
        "recommendation_reason": "kmeans <has> the highest silhouette",
        "methods": rows,
        "pairwise_ari": {"kmeans": {"kmeans": 1.0, "gmm": 0.4}, "gmm": {"kmeans": 0.4, "gmm": 1.0}},
    }
    personas = {"kmeans": build_personas(kmeans, features), "gmm": build_personas(gmm, features)}
    chart_pngs = {
        "pipeline/segment_sizes": charts.segment_sizes(features),
        "pipeline/method_comparison": charts.method_comparison_chart(rows, recommended="kmeans"),
        "kmeans/scatter": charts.cluster_scatter(kmeans),
        "gmm/scatter": charts.cluster_scatter(gmm),
    }
    links = {"Personas (JSON)": "personas/kmeans personas.json", "Features": "tables/features.parquet"}
    return comparison, personas, chart_pngs, links


@pytest.fixture(scope="module")
def report(inputs):
    comparison, personas, chart_pngs, links = inputs
    return build_report(comparison, personas, chart_pngs, links, recommended="kmeans",
                        run_info={"Source": "transactions.csv"})


def test_report_is_self_contained(report, inputs):
    _, _, chart_pngs, _ = inputs
    targets = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', report, flags=re.IGNORECASE)
    assert targets
    assert not [t for t in targets if re.match(r"\s*(https?:)?//", t, flags=re.IGNORECASE)]
    image_sources = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', report)
    assert len(image_sources) == len(chart_pngs)
    assert all(src.startswith("data:image/png;base64,") for src in image_sources)
    for forbidden in ("<script", "<link", "@import", "url(", "<iframe"):
        assert forbidden not in report.lower()
    references = report_references(report)
    assert references["external_references"] == []
    assert references["images"] == references["data_uri_images"] == len(chart_pngs)


def test_report_shows_every_recommended_persona_in_rank_order(report, inputs):
    _, personas, _, _ = inputs
    ranked = sorted(personas["kmeans"]["personas"], key=lambda p: p["rank"])
    assert report_references(report)["personas"] == [p["persona_name"] for p in ranked]
    for persona in ranked:
        tier = persona["value_tier"].lower()
        assert f'class="persona-card tier-{tier}"' in report
        assert f".tier.tier-{tier}" in report  # colour rule for the tier class


def test_report_embeds_every_chart_in_its_section(report, inputs):
    _, _, chart_pngs, _ = inputs
    assert sorted(report_references(report)["charts"]) == sorted(chart_pngs)
    gmm_section = report[report.index('<section id="method-gmm">'):]
    gmm_section = gmm_section[:gmm_section.index("</section>")]
    assert 'data-chart="gmm/scatter"' in gmm_section
    assert 'data-chart="kmeans/scatter"' not in gmm_section
    for name, png in chart_pngs.items():
        width, height = charts.png_size(png)
        assert re.search(rf'data-chart="{name}"><img [^>]*width="{width}" height="{height}"', report)


def test_text_from_data_is_escaped(report, inputs):
    _, personas, _, _ = inputs
    names = [p["persona_name"] for p in personas["kmeans"]["personas"]]
    assert any(TOYS in name for name in names)
    assert "<b>" not in report
    assert "&lt;b&gt;Toys &amp; &quot;Games&quot;&lt;/b&gt;" in report
    assert "kmeans &lt;has&gt; the highest silhouette" in report


def test_report_lists_comparison_personas_and_files(report):
    assert 'class="recommended"' in report
    assert "Agreement between runs" in report
    assert report.count("<section") == 6  # comparison, personas, overview, kmeans, gmm, files
    assert report_references(report)["links"] == [
        "personas/kmeans%20personas.json", "tables/features.parquet"
    ]
    assert "transactions.csv" in report


def test_report_is_deterministic(report, inputs):
    comparison, personas, chart_pngs, links = inputs
    again = build_report(comparison, personas, chart_pngs, links, recommended="kmeans",
                         run_info={"Source": "transactions.csv"})
    assert again == report


@pytest.mark.parametrize("path", ["https://example.org/data.json", "//cdn/x.css", "/etc/passwd"])
def test_links_must_be_relative(inputs, path):
    comparison, personas, chart_pngs, _ = inputs
    with pytest.raises(ValueError, match="relative"):
        build_report(comparison, personas, chart_pngs, {"bad": path}, recommended="kmeans")


def test_recommended_method_needs_personas(inputs):
    comparison, personas, chart_pngs, links = inputs
    with pytest.raises(ValueError, match="hdbscan"):
        build_report(comparison, personas, chart_pngs, links, recommended="hdbscan")


def test_broken_chart_bytes_are_rejected(inputs):
    comparison, personas, _, links = inputs
    with pytest.raises(ValueError, match="PNG"):
        build_report(comparison, personas, {"kmeans/scatter": b"<svg/>"}, links, recommended="kmeans")


def test_write_report_replaces_the_file_whole(tmp_path, report):
    target = tmp_path / "out" / "report.html"
    write_report("old", target)
    write_report(report, target)
    assert target.read_text(encoding="utf-8") == report
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]

import base64
import io
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from segmentation_pipeline import charts
from segmentation_pipeline.retail.personas import build_personas


def stand_in_result(n=600, k=4, d=6, soft=True, seed=1, method="gmm", curve=None):
    """A clustering result with well separated blobs (the clustering package is not needed)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    centres = rng.normal(scale=5.0, size=(k, d))
    memberships = rng.dirichlet(np.ones(k), size=n) if soft else None
    return SimpleNamespace(
        method=method,
        customer_ids=np.array([f"C{i:06d}" for i in range(n)]),
        labels=labels,
        memberships=memberships,
        n_clusters=k,
        prepared=centres[labels] + rng.normal(size=(n, d)),
        selection_curve=curve,
    )


def stand_in_features(result, seed=2):
    rng = np.random.default_rng(seed)
    n = len(result.labels)
    segments = np.array(["champions", "loyal_customers", "at_risk", "hibernating", "new_customers"])
    monetary = rng.lognormal(5, 1, n) * (1 + result.labels)
    return pd.DataFrame({
        "customer_id": result.customer_ids,
        "recency_days": rng.integers(1, 700, n),
        "frequency": rng.geometric(0.3, n),
        "monetary": monetary,
        "avg_order_value": monetary / 3,
        "return_rate": rng.uniform(0, 0.2, n),
        "tenure_months": rng.uniform(1, 36, n),
        "r_score": rng.integers(1, 6, n),
        "f_score": rng.integers(1, 6, n),
        "m_score": rng.integers(1, 6, n),
        "segment": segments[rng.integers(0, len(segments), n)],
        "dept_value:Home & Kids": rng.uniform(0, 100, n),
        "dept_value:Garden & Outdoor Living": rng.uniform(0, 100, n) * result.labels,
    })


@pytest.fixture(scope="module")
def result():
    return stand_in_result(curve={"criterion": "bic", "k": [2, 3, 4, 5], "score": [9.0, 7.0, 5.0, 6.0],
                                  "chosen_k": 4})


@pytest.fixture(scope="module")
def features(result):
    return stand_in_features(result)


def comparison_rows():
    return [
        {"method": "kmeans", "n_clusters": 4, "silhouette": 0.41, "stability_ari_mean": 0.93,
         "davies_bouldin": 0.8},
        {"method": "gmm", "n_clusters": 4, "silhouette": 0.38, "stability_ari_mean": 0.71,
         "davies_bouldin": float("nan")},
    ]


def assert_png(png, chart):
    assert png.startswith(charts.PNG_SIGNATURE)
    assert charts.png_size(png) == charts.CHART_SIZES[chart]
    with Image.open(io.BytesIO(png)) as image:
        image.load()  # decodes every row: a truncated or corrupt file raises
        assert image.size == charts.CHART_SIZES[chart]


def rendered_figures(monkeypatch):
    """Capture the matplotlib figures charts render, to inspect their text layout."""
    figures = []
    render = charts._render

    def capture(fig):
        figures.append(fig)
        return render(fig)

    monkeypatch.setattr(charts, "_render", capture)
    return figures


def agg_renderer(fig):
    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def assert_nothing_cut_off(fig):
    """Everything drawn (titles, labels, legends, annotations) lies inside the image."""
    drawn = fig.get_tightbbox(agg_renderer(fig))
    tolerance = 1 / charts.DPI
    assert drawn.x0 >= -tolerance and drawn.y0 >= -tolerance
    assert drawn.x1 <= fig.get_figwidth() + tolerance and drawn.y1 <= fig.get_figheight() + tolerance


@pytest.fixture(scope="module")
def rendered(result, features):
    """Every chart once: {case: (png, matplotlib figure)}; case names start with the chart name."""
    kmeans = stand_in_result(method="kmeans", soft=False, curve={
        "criterion": "silhouette", "k": [2, 3, 4, 5], "score": [0.3, 0.35, 0.45, 0.4], "chosen_k": 4})
    personas = build_personas(result, features)
    cases = {
        "cluster_scatter": lambda: charts.cluster_scatter(result),
        "cluster_scatter sampled, 12 clusters, long method name": lambda: charts.cluster_scatter(
            stand_in_result(n=6_000, k=12, method="autoencoder_kmeans")),
        "cluster_dashboard": lambda: charts.cluster_dashboard(result, features, personas),
        "membership_histogram": lambda: charts.membership_histogram(result),
        "membership_histogram 9 clusters, long method name": lambda: charts.membership_histogram(
            stand_in_result(k=9, method="fuzzy_cmeans")),
        "rfm_distributions": lambda: charts.rfm_distributions(features),
        "segment_sizes": lambda: charts.segment_sizes(features),
        "selection_curves": lambda: charts.selection_curves({"gmm": result, "kmeans": kmeans}),
        "method_comparison": lambda: charts.method_comparison_chart(comparison_rows(), "kmeans"),
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        figures = rendered_figures(monkeypatch)
        pngs = {case: draw() for case, draw in cases.items()}
    return {case: (pngs[case], fig) for case, fig in zip(cases, figures, strict=True)}


def test_every_chart_has_its_documented_size(rendered):
    retail = {name for name in charts.CHART_SIZES if not name.startswith("leads_")}  # leads: test_leads_personas
    assert {case.split()[0] for case in rendered} == retail
    for case, (png, _) in rendered.items():
        assert_png(png, case.split()[0])


def test_no_chart_text_is_cut_off(rendered):
    for _, fig in rendered.values():
        assert_nothing_cut_off(fig)


def test_pngs_stay_small_enough_to_embed(rendered):
    for case, (png, _) in rendered.items():
        assert len(png) < 300_000, case


def test_each_chart_is_drawn_once(monkeypatch, result, features):
    """No layout engine: one draw per chart (constrained layout adds a full extra draw per save)."""
    draws = []
    original = Figure.draw

    def counting_draw(self, renderer):
        draws.append(self)
        return original(self, renderer)

    monkeypatch.setattr(Figure, "draw", counting_draw)
    charts.cluster_scatter(result)
    charts.cluster_dashboard(result, features)
    charts.rfm_distributions(features)
    assert len(draws) == 3
    assert all(fig.get_layout_engine() is None for fig in draws)


def test_bars_start_at_zero_and_reach_their_value(monkeypatch, features):
    figures = rendered_figures(monkeypatch)
    charts.segment_sizes(features)
    ax = figures[0].axes[0]
    (bars,) = ax.collections
    extents = [path.get_extents() for path in bars.get_paths()]
    counts = features["segment"].value_counts()
    labels = [t.get_text().replace(" ", "_") for t in ax.get_yticklabels()]
    assert [box.x0 for box in extents] == [0] * len(labels)
    assert [box.x1 for box in extents] == [counts[label] for label in labels]
    assert ax.get_xlim()[0] == 0


def test_charts_are_deterministic(result):
    assert charts.cluster_scatter(result) == charts.cluster_scatter(result)


def test_dashboard_without_personas_and_with_many_clusters():
    many = stand_in_result(n=900, k=15, soft=False)
    assert_png(charts.cluster_dashboard(many, stand_in_features(many)), "cluster_dashboard")


def test_large_input_is_sampled_for_the_scatter(monkeypatch):
    big = stand_in_result(n=200_000, k=5, soft=False)
    drawn = []
    original = Axes.scatter

    def counting_scatter(self, x, y, *args, **kwargs):
        drawn.append(np.size(x))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "scatter", counting_scatter)
    started = time.perf_counter()
    png = charts.cluster_scatter(big)
    elapsed = time.perf_counter() - started
    assert_png(png, "cluster_scatter")
    assert sum(drawn) <= charts.SCATTER_MAX_POINTS + big.n_clusters  # sample + one marker per centroid
    assert elapsed < 20


def test_sample_is_fixed_and_without_repeats():
    first = charts._sample_indices(100_000, 5_000)
    assert len(np.unique(first)) == 5_000 and np.all(np.diff(first) > 0)
    assert np.array_equal(first, charts._sample_indices(100_000, 5_000))
    assert np.array_equal(charts._sample_indices(10, 5_000), np.arange(10))


def test_membership_histogram_needs_memberships():
    hard = stand_in_result(soft=False, method="kmeans")
    with pytest.raises(ValueError, match="kmeans"):
        charts.membership_histogram(hard)


def test_skewed_positive_data_gets_a_log_axis():
    rng = np.random.default_rng(0)
    _, log_scale = charts._histogram_bins(rng.lognormal(3, 1.5, 5_000))
    assert log_scale
    bins, log_scale = charts._histogram_bins(rng.integers(1, 10, 5_000).astype(float))
    assert not log_scale and np.allclose(np.diff(bins), 1.0)


def test_selection_curves_without_any_curve_still_render():
    assert_png(charts.selection_curves([stand_in_result(soft=False)]), "selection_curves")


def test_comparison_accepts_table_rows_and_comparison_dict():
    frame = pd.DataFrame(comparison_rows())
    for form in (frame, comparison_rows(), {"methods": comparison_rows(), "recommended": "kmeans"}):
        table = charts.comparison_frame(form)
        assert list(table.index) == ["kmeans", "gmm"]
    assert_png(charts.method_comparison_chart(frame.drop(columns="davies_bouldin")), "method_comparison")


def test_png_encoding_is_lossless_and_carries_the_dpi():
    pixels = np.random.default_rng(3).integers(0, 256, size=(7, 13, 3), dtype=np.uint8)
    png = charts._encode_png(pixels)
    assert charts.png_size(png) == (13, 7)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGB"
        assert image.info["dpi"] == pytest.approx((charts.DPI, charts.DPI), abs=0.1)
        assert np.array_equal(np.asarray(image), pixels)


def test_png_size_rejects_other_bytes():
    with pytest.raises(ValueError):
        charts.png_size(b"GIF89a" + b"\0" * 30)


def test_markdown_image_and_save_png(tmp_path, result):
    png = charts.membership_histogram(result)
    markdown = charts.markdown_image(png, max_width=2000)
    assert markdown.startswith("![](data:image/png;base64,") and markdown.endswith(")")
    assert base64.b64decode(markdown[len("![](data:image/png;base64,"):-1]) == png
    preview = base64.b64decode(charts.markdown_image(png)[len("![](data:image/png;base64,"):-1])
    assert charts.png_size(preview)[0] == charts.UI_PREVIEW_WIDTH < charts.png_size(png)[0]  # fits the UI dialog
    target = charts.save_png(png, tmp_path / "sub" / "membership.png")
    assert target.read_bytes() == png
    assert [p.name for p in target.parent.iterdir()] == ["membership.png"]
    with pytest.raises(ValueError):
        charts.save_png(b"not a png", tmp_path / "broken.png")
    assert not (tmp_path / "broken.png").exists()


@pytest.mark.parametrize("k", [8, 12, 24])
def test_dashboard_labels_fit_and_do_not_overlap(monkeypatch, k):
    figures = rendered_figures(monkeypatch)
    many = stand_in_result(n=40 * k, k=k, soft=False)
    features = stand_in_features(many)
    charts.cluster_dashboard(many, features, build_personas(many, features))
    fig = figures[0]
    assert_nothing_cut_off(fig)
    renderer = fig.canvas.get_renderer()
    checked = 0
    for ax in fig.axes:
        labels = sorted((t.get_window_extent(renderer) for t in ax.get_yticklabels()
                         if t.get_visible() and t.get_text()), key=lambda box: box.y0)
        checked += len(labels)
        for lower, upper in zip(labels, labels[1:]):
            assert lower.y1 <= upper.y0 + 0.5
    assert checked == 2 * k  # each row of panels labels every cluster once


def legend_texts(fig) -> list[str]:
    return [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()]


def test_each_cluster_keeps_one_colour_across_the_charts_of_a_method(monkeypatch, result, features):
    personas = build_personas(result, features)
    figures = rendered_figures(monkeypatch)
    charts.cluster_scatter(result, personas)
    charts.cluster_dashboard(result, features, personas)
    scatter, dashboard = figures
    scatter_colours = [tuple(c.get_facecolor()[0][:3]) for c in scatter.axes[0].collections[: result.n_clusters]]
    ranked = sorted(personas["personas"], key=lambda p: p["rank"])
    bars = dashboard.axes[0].collections[0].get_facecolor()
    for position, persona in enumerate(ranked):
        assert tuple(bars[position][:3]) == scatter_colours[persona["cluster_id"]]


def test_scatter_legend_names_personas_and_marks_noise(monkeypatch, result, features):
    personas = build_personas(result, features)
    noise = np.zeros(len(result.labels), dtype=bool)
    noise[::10] = True
    figures = rendered_figures(monkeypatch)
    charts.cluster_scatter(SimpleNamespace(**vars(result), noise=noise), personas)
    texts = " ".join(legend_texts(figures[0])).replace("\n", " ")
    for persona in personas["personas"]:
        assert persona["persona_name"].split(" [")[0] in texts
    assert f"HDBSCAN noise (n={noise.sum()})" in texts
    assert_nothing_cut_off(figures[0])


def test_selection_curves_say_which_rule_chose_k(monkeypatch):
    falling = {"criterion": "bic", "k": [2, 3, 4, 5], "score": [9.0, 5.0, 4.5, 4.2], "chosen_k": 3, "rule": "elbow"}
    peaked = {"criterion": "silhouette", "k": [2, 3, 4], "score": [0.3, 0.5, 0.4], "chosen_k": 3, "rule": "max"}
    figures = rendered_figures(monkeypatch)
    charts.selection_curves([stand_in_result(curve=falling), stand_in_result(method="kmeans", curve=peaked)])
    texts = legend_texts(figures[0])
    assert "kmeans: k=3, highest silhouette" in texts
    assert "gmm: k=3, elbow of bic (lowest at k=5)" in texts
    assert_nothing_cut_off(figures[0])


def test_membership_lines_are_drawn_over_the_bars_and_the_legend_beside_them(monkeypatch, result):
    figures = rendered_figures(monkeypatch)
    charts.membership_histogram(result)
    ax = figures[0].axes[0]
    bars_top = max(patch.get_zorder() for patch in ax.patches)
    assert all(line.get_zorder() > bars_top for line in ax.lines)
    legend_box = ax.get_legend().get_window_extent(agg_renderer(figures[0]))
    assert legend_box.x0 >= ax.get_window_extent().x1  # outside the plotting area


def test_segment_names_keep_their_apostrophe(monkeypatch, features):
    figures = rendered_figures(monkeypatch)
    charts.segment_sizes(features.assign(segment=["cant_lose"] * 10 + list(features["segment"][10:])))
    labels = [label.get_text() for label in figures[0].axes[0].get_yticklabels()]
    assert "can't lose" in labels and "at risk" in labels

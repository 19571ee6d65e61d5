"""PNG charts of the RFM data, the clusters and the method comparison.

Every chart is a function returning PNG bytes of an exact, documented pixel size (`CHART_SIZES`,
rendered at `DPI`), so the report, Dagster metadata and checks can rely on it. Figures are built
with matplotlib's object API on the Agg canvas (no pyplot): nothing is registered globally, no GUI
backend is touched and charts can be drawn from worker threads.

Layout is fixed rather than solved: the vertical room for titles, x labels and legends is a
constant per chart (`FRAMES`; their font sizes and line counts are known), and only the width of
each column's y tick labels, which depends on the data and on persona names, is measured once
before drawing. A layout engine (constrained layout) would measure every artist and draw the figure
twice per save, which made it most of the rendering time. `bbox_inches="tight"` is not used
either: it would change the pixel size.
"""

from __future__ import annotations

import base64
import io
import struct
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation
from PIL import Image
from sklearn.decomposition import PCA

from segmentation_pipeline.clustering.metrics import group_means, grouped
from segmentation_pipeline.retail import personas as persona_rules
from segmentation_pipeline.retail.rfm import SEGMENT_DESCRIPTIONS
from segmentation_pipeline.storage import atomic_write_bytes

DPI = 150
# Chart name -> (width, height) in pixels; figsize is width / DPI x height / DPI inches.
CHART_SIZES: dict[str, tuple[int, int]] = {
    "cluster_scatter": (1000, 700),
    "cluster_dashboard": (1400, 1000),
    "membership_histogram": (1000, 700),
    "rfm_distributions": (1500, 500),
    "segment_sizes": (1200, 700),
    "selection_curves": (1400, 800),
    "method_comparison": (1500, 600),
    "leads_dashboard": (1400, 1000),
    "leads_pca": (1000, 700),
}
LEGEND_WRAP = 28  # characters per line of a legend entry right of the axes
SCATTER_MAX_POINTS = 5_000  # points drawn in the PCA scatter; PCA itself uses every customer
SAMPLE_SEED = 0
SKEW_FOR_LOG_SCALE = 2.0  # a positive variable with skewness above this gets a log x-axis
TIER_COLOURS: dict[str, str] = {
    "PREMIUM": "#6a3d9a",
    "HIGH": "#1b9e77",
    "MEDIUM": "#377eb8",
    "LOW": "#e6812f",
    "MINIMAL": "#8c8c8c",
}
# Comparison metrics drawn by method_comparison_chart: column -> panel title.
COMPARISON_METRICS: dict[str, str] = {
    "silhouette_shared": "Silhouette, shared space (higher is better)",
    "stability_ari_mean": "Stability, mean ARI (higher is better)",
    "davies_bouldin": "Davies-Bouldin (lower is better)",
}
CRITERION_TITLES: dict[str, str] = {
    "silhouette": "Silhouette vs k (higher is better)",
    "bic": "BIC vs k (lower is better)",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- per clustering method -----------------------------------------------------------------------


def cluster_scatter(result, personas_dict: dict | None = None) -> bytes:
    """Customers on the first two principal components of the scaled features, coloured by cluster
    (the method's cluster colours), legend with persona names when given; HDBSCAN noise customers
    (`result.noise`) are marked with a black x over their assigned cluster's colour."""
    prepared = np.asarray(result.prepared, dtype=float)
    labels = np.asarray(result.labels).astype(int)
    components = min(2, prepared.shape[1])
    pca = PCA(n_components=components, random_state=SAMPLE_SEED).fit(prepared)
    projected = pca.transform(prepared)
    variance = list(pca.explained_variance_ratio_)
    if components == 1:
        projected = np.column_stack([projected, np.zeros(len(projected))])
        variance.append(0.0)
    shown = _sample_indices(len(projected), SCATTER_MAX_POINTS)
    clusters = np.unique(labels)
    colours = cluster_colours(clusters, int(getattr(result, "n_clusters", len(clusters))))
    centres = group_means(projected, labels, clusters)
    sizes = np.bincount(np.searchsorted(clusters, labels), minlength=len(clusters))
    shown_labels = labels[shown]
    names = {p["cluster_id"]: p["persona_name"] for p in (personas_dict or {}).get("personas", [])}

    fig, ax = _figure("cluster_scatter")
    # One single-colour collection per cluster: Agg stamps identical markers (faster, and the PNG
    # compresses better than with a colour per point). All centroids share one collection.
    for colour, cluster, size in zip(colours, clusters, sizes):
        drawn = shown[shown_labels == cluster]
        ax.scatter(projected[drawn, 0], projected[drawn, 1], s=6, alpha=0.45, color=colour,
                   linewidths=0, label=_legend_label(cluster, names.get(cluster), int(size)))
    noise = getattr(result, "noise", None)
    if noise is not None and np.any(noise):
        marked = shown[np.asarray(noise, dtype=bool)[shown]]
        ax.scatter(projected[marked, 0], projected[marked, 1], s=7, marker="x", color="black",
                   alpha=0.35, linewidths=0.6,
                   label=f"HDBSCAN noise (n={int(np.sum(noise)):,}),\nassigned to the nearest cluster")
    ax.scatter(centres[:, 0], centres[:, 1], s=180, marker="X", c=colours, edgecolors="black",
               linewidths=1.2, zorder=3)
    for cluster, centre in zip(clusters, centres):
        ax.annotate(str(cluster), centre, xytext=(7, 7), textcoords="offset points",
                    fontsize=9, fontweight="bold")
    ax.set_xlabel(f"PC1 ({variance[0]:.1%} of variance)")
    ax.set_ylabel(f"PC2 ({variance[1]:.1%} of variance)")
    _title(ax, _plain(f"{_run_name(result)}: clusters on principal components"))
    note = "X = centroid"
    if len(shown) < len(projected):
        note += f"\n{len(shown):,} of {len(projected):,} customers drawn"
    _legend_right(ax, note, fontsize=6 if len(clusters) > 10 else 7, markerscale=2.5)
    ax.grid(alpha=0.3)
    return _render(fig)


def _legend_label(cluster: int, persona_name: str | None, size: int) -> str:
    """'c3 Loyal Grocery Shoppers\n[HIGH VALUE] (n=250)', wrapped to the legend's width."""
    text = f"c{cluster} {persona_name or f'Cluster {cluster}'} (n={size:,})"
    return _plain("\n".join(textwrap.wrap(text, width=LEGEND_WRAP, max_lines=4, placeholder="...",
                                         break_on_hyphens=False)))


def _run_name(result) -> str:
    """'kmeans' or 'kmeans (behaviour_mix)' when the result says which feature set it used."""
    feature_set = getattr(result, "feature_set", None)
    return f"{result.method} ({feature_set})" if feature_set else str(result.method)


def cluster_dashboard(result, features: pd.DataFrame, personas_dict: dict | None = None) -> bytes:
    """Sizes, revenue vs customer share, mean R/F/M scores and value tiers per cluster (2 x 2)."""
    frame = persona_rules.aligned_features(result, features)
    stats = frame.groupby("cluster", sort=True).agg(
        size=("monetary", "size"), revenue=("monetary", "sum"),
        r=("r_score", "mean"), f=("f_score", "mean"), m=("m_score", "mean"),
    )
    stats["customer_share"] = stats["size"] / stats["size"].sum()
    total = stats["revenue"].sum()
    stats["revenue_share"] = stats["revenue"] / total if total > 0 else stats["customer_share"]
    stats["value_index"] = stats["revenue_share"] / stats["customer_share"]
    stats["tier"] = [persona_rules.tier_for(round(v, 4)) for v in stats["value_index"]]
    by_cluster = {p["cluster_id"]: p for p in (personas_dict or {}).get("personas", [])}
    order = sorted(stats.index, key=lambda c: (by_cluster.get(c, {}).get("rank", 10**6), c))
    stats = stats.loc[order]
    lines, width, fontsize = _label_layout(len(order))
    labels = [_short_label(c, by_cluster.get(c), lines, width) for c in order]
    y = np.arange(len(order))

    fig, axes = _figure("cluster_dashboard", nrows=2, ncols=2)
    (sizes, shares), (scores, tiers) = axes
    _hbars(sizes, y, stats["size"], facecolors=cluster_colours(order, len(order)))
    for yi, n in zip(y, stats["size"]):
        sizes.annotate(f"{n:,}", (n, yi), xytext=(3, 0), textcoords="offset points",
                       va="center", fontsize=min(fontsize, 7))
    _title(sizes, "Customers per cluster")
    sizes.set_xlabel("customers")
    sizes.margins(x=0.15)

    height = 0.38
    _hbars(shares, y - height / 2, stats["customer_share"] * 100, height, label="customer share",
           facecolors="#9ecae1")
    _hbars(shares, y + height / 2, stats["revenue_share"] * 100, height, label="revenue share",
           facecolors="#08519c")
    _title(shares, "Revenue share vs customer share")
    shares.set_xlabel("% of total")
    _legend_below(shares, ncols=2)

    height = 0.27
    for offset, column, name, colour in ((-1, "r", "Recency", "#66c2a5"),
                                         (0, "f", "Frequency", "#fc8d62"),
                                         (1, "m", "Monetary", "#8da0cb")):
        _hbars(scores, y + offset * height, stats[column], height, label=f"{name} score",
               facecolors=colour)
    scores.set_xlim(0, 5.5)
    _title(scores, "Mean R / F / M scores (1-5, high = good)")
    scores.set_xlabel("mean score")
    _legend_below(scores, ncols=3)

    _hbars(tiers, y, stats["value_index"], facecolors=[TIER_COLOURS[t] for t in stats["tier"]])
    for yi, (value, tier) in zip(y, zip(stats["value_index"], stats["tier"])):
        tiers.annotate(f"{value:.2f} {tier}", (value, yi), xytext=(3, 0),
                       textcoords="offset points", va="center", fontsize=min(fontsize, 7))
    thresholds = sorted((v, t) for t, v in persona_rules.VALUE_TIER_THRESHOLDS.items() if v > 0)
    for minimum, tier in thresholds:
        tiers.axvline(minimum, color=TIER_COLOURS[tier], linestyle="--", linewidth=0.8,
                      label=f"{tier} \u2265 {minimum:g}")
    _title(tiers, "Value index and tier")
    tiers.set_xlabel("revenue share / customer share")
    tiers.margins(x=0.35)
    _legend_below(tiers, ncols=2)

    _bar_rows(axes, labels, fontsize=fontsize)
    for ax in axes.flat:
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
        ax.title.set_fontsize(10)
    _suptitle(fig, _plain(f"{_run_name(result)}: cluster dashboard"))
    return _render(fig)


def membership_histogram(result) -> bytes:
    """Histogram of each customer's highest membership, stacked by assigned cluster.

    Only methods with soft memberships (fuzzy c-means, GMM) have one; a ValueError tells the caller
    it asked for a chart that does not exist for this method.
    """
    if getattr(result, "memberships", None) is None:
        raise ValueError(f"method {result.method!r} has no memberships to plot")
    memberships = np.asarray(result.memberships, dtype=float)
    labels = np.asarray(result.labels).astype(int)
    strongest = memberships.max(axis=1)
    floor = 1.0 / memberships.shape[1]
    bins = np.linspace(0.0, 1.0, 41)
    clusters = np.unique(labels)

    fig, ax = _figure("membership_histogram")
    # "stepfilled" draws one polygon per cluster instead of one rectangle per bin and cluster;
    # without edge lines the stacked bars look the same.
    ax.hist(grouped(strongest, labels, clusters), bins=bins, stacked=True,
            histtype="stepfilled", color=cluster_colours(clusters, memberships.shape[1]),
            label=[f"Cluster {c}" for c in clusters])
    # Reference lines above the bars, in black with a white halo so they show on any cluster colour.
    halo = [patheffects.withStroke(linewidth=3.5, foreground="white")]
    ax.axvline(floor, color="black", linestyle=":", linewidth=1.6, zorder=4, path_effects=halo,
               label=f"1/k = {floor:.2f}\n(no preference)")
    median = float(np.median(strongest))
    ax.axvline(median, color="black", linestyle="--", linewidth=1.8, zorder=4, path_effects=halo,
               label=f"median = {median:.2f}")
    uncertain = float((strongest < 0.5).mean())
    _title(ax, _plain(f"{_run_name(result)}: highest membership per customer\n"
                      f"({uncertain:.1%} of customers below 0.5)"))
    ax.set_xlabel("highest membership / probability")
    ax.set_ylabel("customers")
    ax.set_xlim(0, 1)
    _legend_right(ax, None, fontsize=7)
    ax.grid(alpha=0.3)
    return _render(fig)


# --- pipeline level ------------------------------------------------------------------------------


def rfm_distributions(rfm_df: pd.DataFrame) -> bytes:
    """Histograms of recency, frequency and monetary; skewed positive variables on a log axis."""
    fig, axes = _figure("rfm_distributions", ncols=3)
    for ax, column, unit in zip(axes, ("recency_days", "frequency", "monetary"),
                                ("days since last purchase", "purchases", "gross revenue")):
        values = pd.to_numeric(rfm_df[column], errors="coerce").dropna().to_numpy(dtype=float)
        bins, log_scale = _histogram_bins(values)
        if log_scale:
            ax.set_xscale("log")
        counts, edges = np.histogram(values, bins=bins)
        _rectangles(ax, edges[:-1], edges[1:], np.zeros(len(counts)), counts, facecolors="#3182bd",
                    edgecolors="white", linewidths=0.3).sticky_edges.y.append(0)
        median = float(np.median(values)) if len(values) else float("nan")
        ax.axvline(median, color="crimson", linestyle="--", linewidth=1, label=f"median {median:,.1f}")
        _title(ax, f"{column}{' (log scale)' if log_scale else ''}", fontsize=10)
        ax.set_xlabel(unit)
        ax.set_ylabel("customers")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    _suptitle(fig, f"RFM distributions ({len(rfm_df):,} customers)")
    return _render(fig)


def _histogram_bins(values: np.ndarray) -> tuple[np.ndarray | int, bool]:
    """Log-spaced bins for skewed positive data, one bin per value for small integer ranges."""
    if len(values) > 2 and values.min() > 0 and pd.Series(values).skew() > SKEW_FOR_LOG_SCALE:
        return np.geomspace(values.min(), values.max() * 1.0001, 40), True
    if len(values) and np.all(values == np.round(values)) and values.max() - values.min() <= 60:
        return np.arange(values.min() - 0.5, values.max() + 1.5), False
    return 40, False


def segment_sizes(rfm_df: pd.DataFrame) -> bytes:
    """Customers per named RFM segment, in the canonical segment order."""
    counts = rfm_df["segment"].astype(str).value_counts()
    known = [s for s in SEGMENT_DESCRIPTIONS if s in counts.index]
    order = known + sorted(set(counts.index) - set(known))
    counts = counts.reindex(order)
    total = counts.sum()

    fig, ax = _figure("segment_sizes")
    y = np.arange(len(order))
    _hbars(ax, y, counts.to_numpy(), facecolors=_cluster_colours(len(order)))
    for yi, n in zip(y, counts.to_numpy()):
        ax.annotate(f"{n:,} ({n / total:.1%})", (n, yi), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(y, [_plain(persona_rules.segment_title(s)) for s in order])
    ax.invert_yaxis()
    ax.margins(x=0.18)
    ax.set_xlabel("customers")
    _title(ax, f"RFM segments ({total:,} customers)")
    ax.grid(axis="x", alpha=0.3)
    return _render(fig)


def selection_curves(results: Mapping[str, object] | Iterable[object]) -> bytes:
    """Model-selection score vs k for every method that chose k, one panel per criterion.

    Silhouette and BIC panels are always drawn (with a note when no method used them) so the chart
    layout does not depend on which methods ran.
    """
    runs = list(results.values()) if isinstance(results, Mapping) else list(results)
    curves = [(_run_name(r), r.selection_curve) for r in runs if getattr(r, "selection_curve", None)]
    criteria = list(CRITERION_TITLES) + sorted(
        {c["criterion"] for _, c in curves} - set(CRITERION_TITLES)
    )
    fig, axes = _figure("selection_curves", ncols=len(criteria))
    colours = dict(zip(sorted({m for m, _ in curves}), _cluster_colours(max(len(curves), 1))))
    for ax, criterion in zip(np.atleast_1d(axes), criteria):
        drawn = [(m, c) for m, c in curves if c["criterion"] == criterion]
        for method, curve in drawn:
            k, score = np.asarray(curve["k"]), np.asarray(curve["score"], dtype=float)
            ax.plot(k, score, marker="o", markersize=4, color=colours[method],
                    label=_plain(f"{method}: k={curve['chosen_k']}, {choice_rule(curve)}"))
            chosen = k == curve["chosen_k"]
            ax.scatter(k[chosen], score[chosen], s=160, marker="*", color=colours[method],
                       edgecolors="black", zorder=3)
        if drawn:
            _legend_below(ax, ncols=1, title="* = chosen k, and the rule that chose it")
            # every k labelled while there are at most 10 candidates, whatever the panel width
            ax.xaxis.get_major_locator().set_params(integer=True, nbins=10)
        else:
            ax.text(0.5, 0.5, f"no method selected k by {criterion}", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="grey")
        _title(ax, _plain(CRITERION_TITLES.get(criterion, f"{criterion} vs k")), fontsize=10)
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel(_plain(criterion))
        ax.ticklabel_format(axis="y", useOffset=False)  # full values: no "+4.1e4" above the panel
        ax.grid(alpha=0.3)
    return _render(fig)


def choice_rule(curve: dict) -> str:
    """Which rule chose k on a selection curve, in words ('elbow of BIC (lowest at k=10)')."""
    criterion, rule = curve["criterion"], curve.get("rule")
    scores = np.asarray(curve["score"], dtype=float)
    if rule == "elbow":
        lowest = curve["k"][int(np.nanargmin(scores))]
        return f"elbow of {criterion} (lowest at k={lowest})"
    if rule == "min":
        return f"lowest {criterion}"
    if rule == "max":
        return f"highest {criterion}"
    return f"{criterion} rule {rule}" if rule else "fixed k"


def method_comparison_chart(comparison_table, recommended: str | None = None) -> bytes:
    """Silhouette, stability and Davies-Bouldin per run (method x feature set, or method); the
    recommended one (its row name) is highlighted."""
    table = comparison_frame(comparison_table)
    methods = [str(m) for m in table.index]
    y = np.arange(len(methods))
    fig, axes = _figure("method_comparison", ncols=len(COMPARISON_METRICS))
    for ax, (column, title) in zip(axes, COMPARISON_METRICS.items()):
        values = pd.to_numeric(table[column], errors="coerce") if column in table else pd.Series(
            np.nan, index=table.index)
        colours = ["#e6550d" if m == recommended else "#6baed6" for m in methods]
        _hbars(ax, y, values.fillna(0).to_numpy(), facecolors=colours)
        for yi, value in zip(y, values):
            text = "n/a" if pd.isna(value) else f"{value:.3f}"
            ax.annotate(text, (0 if pd.isna(value) else value, yi), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        _title(ax, title, fontsize=10)
        ax.margins(x=0.2)
        ax.grid(axis="x", alpha=0.3)
    _bar_rows([axes], [_plain(m) for m in methods])
    suffix = f" (recommended: {recommended}, highlighted)" if recommended else ""
    _suptitle(fig, _plain(f"Method comparison{suffix}"))
    return _render(fig)


def comparison_frame(comparison) -> pd.DataFrame:
    """Comparison metrics as a DataFrame indexed by run ("method/feature_set"), or by method.

    Accepts a DataFrame (with a `method` column or method index), a list of row dicts, or the dict
    of `comparison.comparison_to_dict` (rows under "methods").
    """
    if isinstance(comparison, pd.DataFrame):
        table = comparison
    elif isinstance(comparison, Mapping):
        rows = comparison.get("methods", comparison.get("table"))
        if rows is None:
            raise ValueError("comparison dict has no 'methods' or 'table' entry")
        return comparison_frame(rows)
    else:
        table = pd.DataFrame(list(comparison))
    for key in ("run", "method"):
        if key in table.columns:
            return table.set_index(key)
    return table


# --- bytes helpers -------------------------------------------------------------------------------


def png_size(png_bytes: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header's IHDR chunk; ValueError when the bytes are not a PNG."""
    if len(png_bytes) < 24 or not png_bytes.startswith(PNG_SIGNATURE) or png_bytes[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png_bytes[16:24])
    return width, height


# Dagster 1.13 shows markdown metadata in a dialog about this wide; wider images are cut off there.
UI_PREVIEW_WIDTH = 900


def markdown_image(png_bytes: bytes, max_width: int = UI_PREVIEW_WIDTH) -> str:
    """Markdown image with the PNG inlined as a data URI (Dagster metadata renders it), scaled down
    to `max_width` so the whole chart fits the UI's dialog; the written file keeps its full size."""
    image = Image.open(io.BytesIO(png_bytes))
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        png_bytes = buffer.getvalue()
    return f"![]({data_uri(png_bytes)})"


def data_uri(png_bytes: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def save_png(png_bytes: bytes, path: str | Path) -> Path:
    """Write the PNG atomically (a reader never sees half a file)."""
    png_size(png_bytes)
    return atomic_write_bytes(Path(path), png_bytes)


# --- drawing helpers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Pixels kept free around and between the axes of a chart; the y tick label room is measured.

    `top` holds the titles, `bottom` the x tick labels, x label and any legend below the axes,
    `row_gap` the same for the upper row plus the titles of the lower one. The cut-off and overlap
    tests check these numbers against what is drawn.
    """

    top: float
    bottom: float
    right: float = 25.0
    row_gap: float = 0.0
    column_gap: float = 35.0


FRAMES: dict[str, Frame] = {
    "cluster_scatter": Frame(top=50, bottom=78, right=310),
    "cluster_dashboard": Frame(top=82, bottom=122, row_gap=140, column_gap=30),
    "membership_histogram": Frame(top=78, bottom=78, right=260),
    "rfm_distributions": Frame(top=88, bottom=82, column_gap=45),
    "segment_sizes": Frame(top=50, bottom=78),
    "selection_curves": Frame(top=45, bottom=260, column_gap=45),
    "method_comparison": Frame(top=88, bottom=45, column_gap=30),
    "leads_dashboard": Frame(top=82, bottom=122, row_gap=140, column_gap=30),
    "leads_pca": Frame(top=50, bottom=78),
}
SUPTITLE_TOP_PX = 8  # the figure title hangs this far below the top edge
Y_AXIS_PAD_PX = 8  # free pixels left of the widest y tick label or y label
LEGEND_DROP_PT = 28  # a legend below its axes starts this far under it, clear of the x label
PNG_COMPRESS_LEVEL = 3  # zlib level: half the time of the default 6, files about 10 % larger


def _figure(name: str, nrows: int = 1, ncols: int = 1):
    """Figure of the documented pixel size for `name` on an Agg canvas, and its grid of axes.

    The rows already have their final heights (from the chart's `Frame`); `_render` only moves the
    columns sideways once their y tick labels are known.
    """
    width, height = CHART_SIZES[name]
    frame = FRAMES[name]
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, label=name)
    FigureCanvasAgg(fig)
    axes_height = (height - frame.top - frame.bottom - frame.row_gap * (nrows - 1)) / nrows
    grid = {"top": 1 - frame.top / height, "bottom": frame.bottom / height,
            "hspace": frame.row_gap / axes_height}
    axes = fig.subplots(nrows, ncols, squeeze=True, gridspec_kw=grid)
    return fig, axes


def _place_columns(fig: Figure) -> None:
    """Give each grid column the width its y tick labels and y label need; share out the rest.

    Only horizontal positions change, so the y ticks (which depend on the axes height) measured
    here are the ones drawn; the text measurements are cached for the draw.
    """
    frame = FRAMES[fig.get_label()]
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    ncols = fig.axes[0].get_subplotspec().get_gridspec().ncols
    room = np.zeros(ncols)
    for ax in fig.axes:
        column = ax.get_subplotspec().colspan.start
        box = ax.yaxis.get_tightbbox(renderer)
        if box is not None:
            room[column] = max(room[column], ax.bbox.x0 - box.x0)
    room += Y_AXIS_PAD_PX
    axes_width = (width - frame.right - room.sum() - frame.column_gap * (ncols - 1)) / ncols
    for ax in fig.axes:
        column = ax.get_subplotspec().colspan.start
        left = room[: column + 1].sum() + column * (axes_width + frame.column_gap)
        position = ax.get_position()
        ax.set_position([left / width, position.y0, axes_width / width, position.height])


def _title(ax, text: str, **text_kw) -> None:
    """Axes title at a fixed height: placing it automatically measures every y axis at each draw."""
    ax.set_title(text, y=1.0, **text_kw)


def _hbars(ax, y, widths, height: float = 0.8, **style) -> PolyCollection:
    """Horizontal bars from zero, centred on `y`; the value axis starts exactly at zero like `barh`."""
    y = np.asarray(y, dtype=float)
    bars = _rectangles(ax, np.zeros(len(y)), np.asarray(widths, dtype=float), y - height / 2,
                       y + height / 2, **style)
    bars.sticky_edges.x.append(0)
    return bars


def _rectangles(ax, x0, x1, y0, y1, **style) -> PolyCollection:
    """Rectangles [x0, x1] x [y0, y1] as one collection: building one Rectangle artist per bar
    (`bar`, `barh`, `hist`) costs more than drawing them."""
    corners = [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]
    bars = PolyCollection(np.stack([np.column_stack(c) for c in corners], axis=1), **style)
    ax.add_collection(bars)
    return bars


def _bar_rows(grid, labels: list[str], **label_kw) -> None:
    """The same horizontal bar rows (first label on top) in every panel, labelled on the left.

    Cheaper than a shared y axis, which creates the labelled ticks of every panel only to hide them.
    """
    y = np.arange(len(labels))
    for row in grid:
        for column, ax in enumerate(row):
            ax.set_ylim(len(labels) - 0.4, -0.6)
            if column == 0:
                ax.set_yticks(y, labels, **label_kw)
            else:
                ax.set_yticks([])


def _suptitle(fig: Figure, text: str) -> None:
    fig.suptitle(text, fontsize=12, y=1 - SUPTITLE_TOP_PX / fig.bbox.height, va="top")


def _legend_below(ax, ncols: int, title: str | None = None) -> None:
    """Legend under the x label, where it cannot cover bars."""
    below = ax.transAxes + ScaledTranslation(0, -LEGEND_DROP_PT / 72, ax.figure.dpi_scale_trans)
    ax.legend(fontsize=7, ncols=ncols, loc="upper center", bbox_to_anchor=(0.5, 0),
              bbox_transform=below, frameon=False, title=title, title_fontsize=7)


def _render(fig: Figure) -> bytes:
    """Lay out, draw once and encode as PNG."""
    _place_columns(fig)
    fig.canvas.draw()
    return _encode_png(np.asarray(fig.canvas.buffer_rgba())[..., :3])


def _encode_png(rgb: np.ndarray) -> bytes:
    """8-bit RGB PNG of an (height, width, 3) image with its DPI and no text chunks (reproducible).

    The figure is opaque, so the alpha channel is dropped; zlib level 3 takes half the time of the
    default for files about 10 % larger.
    """
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, dpi=(DPI, DPI))
    return buffer.getvalue()


def _sample_indices(n: int, limit: int) -> np.ndarray:
    """All indices when n <= limit, else a fixed-seed sorted sample of `limit` indices."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False))


def _cluster_colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def cluster_colours(cluster_ids, n_clusters: int) -> list:
    """The colour of each cluster id: the same in every chart of a method (scatter, dashboard,
    histogram), whatever order the chart draws the clusters in."""
    palette = _cluster_colours(max(int(n_clusters), 1))
    return [palette[int(cluster) % len(palette)] for cluster in cluster_ids]


def _legend_right(ax, title: str | None, fontsize: int, **legend_kw) -> None:
    """Legend in the room right of the axes (Frame.right), where it cannot cover data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=fontsize,
              title=title, title_fontsize=fontsize, frameon=False, **legend_kw)


def _label_layout(n_labels: int) -> tuple[int, int, int]:
    """(lines, characters per line, font size) of dashboard axis labels that fit one bar row each.

    A dashboard panel is about 320 px high; a text line takes about 2.5 px per point of font size.
    """
    for max_labels, layout in ((6, (2, 26, 8)), (9, (2, 30, 7)), (18, (1, 40, 6))):
        if n_labels <= max_labels:
            return layout
    return 1, 44, 5


def _short_label(cluster_id: int, persona: dict | None, lines: int, width: int) -> str:
    """'rank. (c<id>) name' without tier and the word 'Shoppers', cut to lines x width chars."""
    if persona is None:
        return f"Cluster {cluster_id}"
    name = persona["persona_name"].rsplit(" [", 1)[0].replace(" Shoppers", "")
    text = f"{persona['rank']}. (c{cluster_id}) {name}"
    return _plain("\n".join(textwrap.wrap(text, width=width, max_lines=lines, placeholder="...")))


def _plain(text: str) -> str:
    """Escape '$' so matplotlib never reads user text (names, methods) as mathtext."""
    return str(text).replace("$", r"\$")

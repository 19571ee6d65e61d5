"""The two leads charts as PNG bytes, drawn with the shared charts machinery (sizes, frames, colours,
Agg rendering and PNG encoding), so their pixel sizes are documented in `charts.CHART_SIZES`:

- `leads_dashboard` (1400 x 1000 at 150 dpi): leads per persona, conversion rate with its 95% Wilson
  interval and the overall rate, conversions per persona, and each persona's seniority mix;
- `leads_pca` (1000 x 700): the encoded leads on their first two principal components (explained
  variance on the axes), coloured by persona, persona names in the legend.

Rows and legend entries follow the personas' rank (best conversion first).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from segmentation_pipeline.charts import (
    SAMPLE_SEED,
    SCATTER_MAX_POINTS,
    TIER_COLOURS,
    _bar_rows,
    _cluster_colours,
    _figure,
    _hbars,
    _label_layout,
    _legend_below,
    _plain,
    _render,
    _sample_indices,
    _short_label,
    _suptitle,
    _title,
)
from segmentation_pipeline.leads.seniority import SENIORITY_LEVELS

SMALL_SAMPLE_COLOUR = "#d9d9d9"
PCA_FIT_MAX_LEADS = 100_000  # the two axes are fitted on a fixed sample this large; every lead is projected
SENIORITY_COLOURS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b", "#3f007d", "#bdbdbd")  # junior .. C-Suite, Unknown


def leads_dashboard(personas: dict) -> bytes:
    """Sizes, conversion rates with intervals, conversions and seniority mix per persona (2 x 2)."""
    ranked = sorted(personas["personas"], key=lambda p: p["rank"])
    metrics = [p["conversion_metrics"] for p in ranked]
    lines, width, fontsize = _label_layout(len(ranked))
    labels = [_short_label(p["cluster_id"], p, lines, width) for p in ranked]
    y = np.arange(len(ranked))
    tier_colours = [SMALL_SAMPLE_COLOUR if m["value_tier"] is None else TIER_COLOURS[m["value_tier"]] for m in metrics]

    fig, axes = _figure("leads_dashboard", nrows=2, ncols=2)
    (sizes, rates), (conversions, seniority) = axes
    _hbars(sizes, y, [p["cluster_size"] for p in ranked], facecolors=_cluster_colours(len(ranked)))
    for yi, persona in zip(y, ranked):
        sizes.annotate(f"{persona['cluster_size']:,} ({persona['cluster_percentage']:.1f}%)",
                       (persona["cluster_size"], yi), xytext=(3, 0), textcoords="offset points",
                       va="center", fontsize=min(fontsize, 7))
    _title(sizes, "Leads per persona")
    sizes.set_xlabel("leads")
    sizes.margins(x=0.3)

    rate = np.array([100 * m["conversion_rate"] for m in metrics])
    low = np.array([100 * m["ci_low"] for m in metrics])
    high = np.array([100 * m["ci_high"] for m in metrics])
    _hbars(rates, y, rate, facecolors=tier_colours)
    rates.errorbar(rate, y, xerr=[rate - low, high - rate], fmt="none", ecolor="black", elinewidth=1, capsize=3,
                   label="95% Wilson interval")
    overall = 100 * personas["overall_conversion_rate"]
    rates.axvline(overall, color="crimson", linestyle="--", linewidth=1, label=f"overall {overall:.1f}%")
    for yi, value, metric in zip(y, high, metrics):
        tier = metric["value_tier"] or "small sample"
        rates.annotate(f"{100 * metric['conversion_rate']:.1f}% {tier}", (value, yi), xytext=(3, 0),
                       textcoords="offset points", va="center", fontsize=min(fontsize, 7))
    _title(rates, "Conversion rate (tier colour, 95% interval)")
    rates.set_xlabel("% converted")
    rates.margins(x=0.35)
    _legend_below(rates, ncols=2)

    _hbars(conversions, y, [m["conversions"] for m in metrics], facecolors="#1b9e77")
    for yi, metric in zip(y, metrics):
        conversions.annotate(f"{metric['conversions']:,}", (metric["conversions"], yi), xytext=(3, 0),
                             textcoords="offset points", va="center", fontsize=min(fontsize, 7))
    _title(conversions, "Total conversions")
    conversions.set_xlabel("converted leads")
    conversions.margins(x=0.2)

    levels = list(SENIORITY_LEVELS) + ["Unknown"]
    left = np.zeros(len(ranked))
    for level, colour in zip(levels, SENIORITY_COLOURS):
        share = np.array([p["demographics"]["seniority"].get(level, 0.0) for p in ranked])
        seniority.barh(y, share, left=left, color=colour, height=0.8, label=level)
        left += share
    seniority.set_xlim(0, 100)
    _title(seniority, "Seniority distribution")
    seniority.set_xlabel("% of the persona's leads")
    _legend_below(seniority, ncols=3)

    _bar_rows(axes, labels, fontsize=fontsize)
    for ax in axes.flat:
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
        ax.title.set_fontsize(10)
    _suptitle(fig, f"Lead personas ({personas['total_leads']:,} leads, ranked by conversion rate)")
    return _render(fig)


def leads_pca(encoded: np.ndarray, labels: np.ndarray, personas: dict) -> bytes:
    """The encoded leads on two principal components, coloured and named by persona."""
    labels = np.asarray(labels).astype(int)
    components = min(2, encoded.shape[1])
    fitted = _sample_indices(len(encoded), PCA_FIT_MAX_LEADS)
    pca = PCA(n_components=components, random_state=SAMPLE_SEED).fit(encoded[fitted])
    # the projection of every lead without PCA.transform's centred copy of the whole matrix
    projected = encoded @ pca.components_.T - pca.mean_ @ pca.components_.T
    variance = list(pca.explained_variance_ratio_)
    if components == 1:
        projected = np.column_stack([projected, np.zeros(len(projected))])
        variance.append(0.0)
    shown = _sample_indices(len(projected), SCATTER_MAX_POINTS)
    ranked = sorted(personas["personas"], key=lambda p: p["rank"])
    colours = _cluster_colours(len(ranked))

    fig, ax = _figure("leads_pca")
    for colour, persona in zip(colours, ranked):
        members = labels == persona["cluster_id"]
        drawn = shown[members[shown]]
        ax.scatter(projected[drawn, 0], projected[drawn, 1], s=6, alpha=0.45, color=colour, linewidths=0,
                   label=_plain(f"{persona['rank']}. {persona['persona_name']} (n={members.sum():,})"))
        if members.any():
            centre = projected[members].mean(axis=0)
            ax.scatter(*centre, s=160, marker="X", color=colour, edgecolors="black", linewidths=1.2, zorder=3)
    ax.set_xlabel(f"PC1 ({variance[0]:.1%} of variance)")
    ax.set_ylabel(f"PC2 ({variance[1]:.1%} of variance)")
    _title(ax, "Lead personas on the first two principal components")
    note = "X = centre"
    if len(shown) < len(projected):
        note += f"; {len(shown):,} of {len(projected):,} leads drawn"
    ax.legend(loc="best", fontsize=7, markerscale=2.5, title=note, title_fontsize=7)
    ax.grid(alpha=0.3)
    return _render(fig)

"""The interactive persona map: one self-contained HTML page (plotly.js inlined, no network).

Each persona is a point of a 2-D projection of its vector (PCA, or t-SNE), coloured by cluster; a
selector recolours the points by any classification dimension. Hovering shows the persona's id,
cluster, labels and the start of its text. A second chart shows how the clustering was tuned: the
silhouette per k (k-means) or the k-distance curve with the chosen eps (DBSCAN).

The page is deterministic: fixed element ids, fixed colours, coordinates rounded, no timestamps, so
the same inputs and seed give byte-identical HTML.
"""

from __future__ import annotations

import html
import io
import json
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib import colormaps
from matplotlib.figure import Figure
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from segmentation_pipeline.persona_texts.themes import NOISE_LABEL

MAP_DIV_ID = "persona-map"
TUNING_DIV_ID = "persona-tuning"
PALETTE = qualitative.Dark24 + qualitative.Light24
NOISE_COLOUR = "#9e9e9e"
WEBGL_ABOVE = 5_000  # more points than this are drawn with WebGL (SVG gets slow); fewer render anywhere
HOVER_CHARS = 280
TSNE_PCA_DIMENSIONS = 50  # t-SNE runs on this many principal components (the usual speed-up)
COORDINATE_DECIMALS = 4


def project_2d(vectors: np.ndarray, method: str, seed: int) -> np.ndarray:
    """(n, 2) coordinates: PCA, or t-SNE (on the first principal components) for `tsne`."""
    n = len(vectors)
    with threadpool_limits(limits=1):
        if method == "tsne" and n > 3:
            reduced = PCA(n_components=min(TSNE_PCA_DIMENSIONS, vectors.shape[1], n), svd_solver="full").fit_transform(vectors)
            perplexity = float(min(30.0, (n - 1) / 3))
            coordinates = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
        else:
            components = min(2, vectors.shape[1], n)
            coordinates = PCA(n_components=components, svd_solver="full").fit_transform(vectors)
            if components < 2:
                coordinates = np.column_stack([coordinates, np.zeros(n)])
    return np.round(coordinates, COORDINATE_DECIMALS)


def _colours(values: list[str], categories: list[str]) -> tuple[list[str], dict[str, str]]:
    """A colour per point and the legend (category -> colour, in `categories` order); noise is grey."""
    legend = {c: NOISE_COLOUR if c == NOISE_LABEL else PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    return [legend[v] for v in values], legend


def _hover(table: pd.DataFrame, texts: list[str], dimensions: list[str]) -> list[str]:
    lines = []
    for row, text in zip(table.itertuples(index=False), texts):
        short = " ".join(text.split())
        short = short if len(short) <= HOVER_CHARS else short[: HOVER_CHARS - 1] + "…"
        wrapped = "<br>".join(textwrap.wrap(html.escape(short), 70))
        labels = "<br>".join(f"{d}: {html.escape(str(getattr(row, d)))} ({getattr(row, d + '_confidence'):.2f})" for d in dimensions)
        lines.append(
            f"<b>{html.escape(str(row.persona_id))}</b> · {html.escape(str(row.cluster_label))}<br>{wrapped}"
            + (f"<br>{labels}" if labels else "")
        )
    return lines


def map_figure(table: pd.DataFrame, texts: list[str], coordinates: np.ndarray, dimensions: list[str], title: str) -> go.Figure:
    """The persona map. `table` is the clusters table (cluster_label + each dimension and its
    confidence), aligned with `texts` and `coordinates`."""
    by_cluster = table.drop_duplicates("cluster_id").sort_values("cluster_id", key=lambda ids: ids.where(ids >= 0, ids.max() + 1))
    colourings = {"cluster": _colours(table["cluster_label"].tolist(), by_cluster["cluster_label"].tolist())}
    for dimension in dimensions:
        values = table[dimension].astype(str).tolist()
        colourings[dimension] = _colours(values, sorted(set(values)))
    scatter = go.Scattergl if len(table) > WEBGL_ABOVE else go.Scatter
    figure = go.Figure()
    figure.add_trace(scatter(
        x=coordinates[:, 0], y=coordinates[:, 1], mode="markers", name="personas", showlegend=False,
        marker={"color": colourings["cluster"][0], "size": 7, "opacity": 0.85, "line": {"width": 0}},
        hovertext=_hover(table, texts, dimensions), hoverinfo="text",
    ))
    legend_owner = []
    for name, (_, legend) in colourings.items():
        for category, colour in legend.items():
            figure.add_trace(go.Scatter(
                x=[None], y=[None], mode="markers", name=str(category), legendgroup=name,
                marker={"color": colour, "size": 9}, visible=name == "cluster", hoverinfo="skip",
            ))
            legend_owner.append((name, colour))
    buttons = [
        {
            "label": name if name == "cluster" else name.replace("_", " "),
            "method": "restyle",
            "args": [{
                "marker.color": [point_colours] + [colour for _, colour in legend_owner],
                "visible": [True] + [owner == name for owner, _ in legend_owner],
            }],
        }
        for name, (point_colours, _) in colourings.items()
    ]
    figure.update_layout(
        title={"text": html.escape(title)},
        template="plotly_white",
        height=720,
        hovermode="closest",
        legend={"title": {"text": "colour"}, "itemsizing": "constant"},
        xaxis={"title": {"text": "component 1"}, "zeroline": False},
        yaxis={"title": {"text": "component 2"}, "zeroline": False},
        updatemenus=[{"type": "dropdown", "buttons": buttons, "x": 0.0, "xanchor": "left", "y": 1.08, "yanchor": "bottom", "active": 0}],
        annotations=[{"text": "colour by:", "x": 0.0, "xref": "paper", "xanchor": "right", "y": 1.1, "yref": "paper", "yanchor": "bottom", "showarrow": False}],
        margin={"t": 110},
    )
    return figure


def tuning_figure(selection_curve: dict | None, k_distance: dict | None) -> go.Figure | None:
    """Silhouette per candidate k with the chosen k, or the k-distance curve with the knee's eps."""
    if selection_curve:
        figure = go.Figure(go.Scatter(x=selection_curve["k"], y=selection_curve["score"], mode="lines+markers", name="silhouette"))
        figure.add_vline(x=selection_curve["chosen_k"], line_dash="dash", annotation_text=f"chosen k = {selection_curve['chosen_k']}")
        figure.update_layout(title={"text": "k-means: silhouette per k"}, xaxis_title="k", yaxis_title="silhouette")
    elif k_distance:
        figure = go.Figure(go.Scatter(x=k_distance["rank"], y=k_distance["distance"], mode="lines", name="k-distance"))
        figure.add_hline(y=k_distance["eps"], line_dash="dash", annotation_text=f"eps = {k_distance['eps']:.4f} (knee)")
        figure.update_layout(
            title={"text": f"DBSCAN: distance to the {k_distance['min_samples']}-th neighbour, sorted"},
            xaxis_title="personas (most isolated first)", yaxis_title="distance",
        )
    else:
        return None
    figure.update_layout(template="plotly_white", height=360)
    return figure


def cluster_map_html(
    table: pd.DataFrame,
    texts: list[str],
    coordinates: np.ndarray,
    dimensions: list[str],
    title: str,
    summary: dict,
    selection_curve: dict | None = None,
    k_distance: dict | None = None,
) -> str:
    """The whole page; `summary` (name -> value) is listed above the map."""
    config = {"displaylogo": False, "responsive": True}
    parts = [map_figure(table, texts, coordinates, dimensions, title).to_html(
        full_html=False, include_plotlyjs=False, div_id=MAP_DIV_ID, config=config)]
    tuning = tuning_figure(selection_curve, k_distance)
    if tuning is not None:
        parts.append(tuning.to_html(full_html=False, include_plotlyjs=False, div_id=TUNING_DIV_ID, config=config))
    facts = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(json.dumps(v) if isinstance(v, (dict, list)) else str(v))}</li>" for k, v in summary.items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}ul{columns:2}</style>\n"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<ul>{facts}</ul>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


# --- static previews (PNG) for the Dagster UI --------------------------------------------------


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def map_preview_png(table: pd.DataFrame, coordinates: np.ndarray, projection: str) -> bytes:
    """A static preview of `clusters.html` for the Dagster UI: the 2-D map coloured by cluster (noise grey)."""
    figure = Figure(figsize=(10, 7))
    axes = figure.add_subplot()
    palette = colormaps["tab20"].colors
    for cluster_id, rows in table.groupby("cluster_id", sort=True).groups.items():
        points = coordinates[np.asarray(rows)]
        label = table.loc[rows[0], "cluster_label"]
        colour = "#9e9e9e" if cluster_id < 0 else palette[int(cluster_id) % len(palette)]
        axes.scatter(points[:, 0], points[:, 1], s=14, color=colour, label=label if label != NOISE_LABEL else "noise")
    n_clusters = int((table["cluster_id"].unique() >= 0).sum())
    axes.set_title(f"Persona map ({projection}), {n_clusters} clusters")
    axes.set_xlabel("component 1")
    axes.set_ylabel("component 2")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    return _png(figure)


def tuning_preview_png(selection_curve: dict | None, k_distance: dict | None) -> bytes | None:
    """The silhouette per k with the chosen k (k-means), or the k-distance curve with eps (DBSCAN)."""
    if not selection_curve and not k_distance:
        return None
    figure = Figure(figsize=(8, 4.5))
    axes = figure.add_subplot()
    if selection_curve:
        axes.plot(selection_curve["k"], selection_curve["score"], marker="o")
        axes.axvline(selection_curve["chosen_k"], linestyle="--", color="grey")
        axes.set_title(f"k-means: silhouette per k (chosen k = {selection_curve['chosen_k']})")
        axes.set_xlabel("k")
        axes.set_ylabel("silhouette")
    else:
        axes.plot(k_distance["rank"], k_distance["distance"])
        axes.axhline(k_distance["eps"], linestyle="--", color="grey")
        axes.set_title(f"DBSCAN: distance to the {k_distance['min_samples']}-th neighbour (eps = {k_distance['eps']:.4f})")
        axes.set_xlabel("personas (most isolated first)")
        axes.set_ylabel("distance")
    figure.tight_layout()
    return _png(figure)

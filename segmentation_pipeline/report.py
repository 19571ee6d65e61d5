"""One self-contained HTML report: method comparison, personas, charts and links to the data files.

The file is meant to be mailed or opened from a shared drive, so everything it shows is inside it:
images are base64 data URIs, CSS is inline, there is no script and no network reference. All text
coming from data (persona names, departments, countries, method names) is HTML-escaped.
`report_references` reads a report back so a check can prove it shows every persona and chart.
"""

from __future__ import annotations

import html
import math
import numbers
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

from segmentation_pipeline.charts import (
    TIER_COLOURS,
    comparison_frame,
    data_uri,
    png_size,
)
from segmentation_pipeline.storage import atomic_write_text

DEFAULT_TITLE = "Customer segmentation report"
PIPELINE_PREFIX = "pipeline/"
COMPARISON_CHART = "pipeline/method_comparison"
# Chart name suffix -> caption shown under the image.
CHART_CAPTIONS: dict[str, str] = {
    "rfm_distributions": "Recency, frequency and monetary distributions",
    "segment_sizes": "Customers per named RFM segment",
    "selection_curves": "Choice of the number of clusters per method",
    "method_comparison": "Quality metrics per clustering method",
    "scatter": "Clusters on the first two principal components",
    "dashboard": "Cluster sizes, value, R/F/M scores and value tiers",
    "membership": "Highest soft membership per customer",
}
# The leads section's charts ("leads/<name>"): their own captions (a suffix such as "dashboard" is shared).
LEADS_CHART_CAPTIONS: dict[str, str] = {
    "dashboard": "Leads per persona, conversion rate with its 95% interval, conversions and seniority mix",
    "pca": "Leads on the first two principal components of their encoding, by persona",
}
# The chart function names work as chart names too.
CHART_CAPTIONS |= {
    "cluster_scatter": CHART_CAPTIONS["scatter"],
    "cluster_dashboard": CHART_CAPTIONS["dashboard"],
    "membership_histogram": CHART_CAPTIONS["membership"],
}
COMPARISON_SCALARS = ("recommendation_reason", "recommendation_rule", "stability_threshold", "shared_space")
# Comparison columns shown in the report (the rest of each run's metrics go to its method section),
# with their headers; a column is left out when no run has a value for it (e.g. noise share
# without HDBSCAN, agreement with the truth on real data).
REPORT_COLUMNS: dict[str, str] = {
    "n_clusters": "k",
    "silhouette_shared": "silhouette (shared space)",
    "silhouette": "silhouette (own space)",
    "davies_bouldin": "Davies-Bouldin",
    "stability_ari_mean": "stability mean",
    "stability_ari_min": "stability min",
    "noise_share": "noise share",
    "ari_vs_truth": "ARI vs truth",
    "nmi_vs_truth": "NMI vs truth",
    "fit_seconds": "fit s",
}
# The page must read at 1,400 px without sideways scrolling (checked in headless Chromium).
PAGE_WIDTH_PX = 1400

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1320px; margin: 0 auto; padding: 0 24px 48px; }
.wide { max-width: 100%; overflow-x: auto; }
header.page { background: #1f3b57; color: #fff; padding: 20px 24px; }
header.page h1 { margin: 0 0 8px; font-size: 1.7em; }
header.page dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0; }
header.page dt { font-weight: 600; opacity: 0.85; }
header.page dd { margin: 0; }
nav { margin: 16px 0; }
nav a { margin-right: 14px; }
section { background: #fff; border-radius: 8px; padding: 16px 22px; margin: 20px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h2 { margin-top: 0; border-bottom: 2px solid #e3e6ea; padding-bottom: 6px; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 0.9em; }
th, td { border: 1px solid #d9dde2; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.recommended td { background: #fff4e5; font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 9px; font-size: 0.8em;
         font-weight: 700; color: #fff; background: #e6550d; vertical-align: middle; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(390px, 1fr)); gap: 16px; }
.persona-card { border: 1px solid #d9dde2; border-left: 8px solid #999; border-radius: 6px;
                padding: 12px 16px; background: #fff; }
.persona-card h3 { margin: 4px 0; font-size: 1.1em; overflow-wrap: anywhere; }
.persona-card .rank { color: #666; font-weight: 700; }
.persona-card dl { display: grid; grid-template-columns: max-content auto; gap: 1px 12px;
                   font-size: 0.9em; margin: 8px 0; }
.persona-card dt { color: #555; }
.persona-card dd { margin: 0; font-variant-numeric: tabular-nums; }
.persona-card .reason { color: #666; font-size: 0.85em; }
.flag { display: inline-block; border-radius: 4px; padding: 1px 8px; font-size: 0.8em;
        font-weight: 700; color: #fff; background: #b2182b; }
.persona-card ul { padding-left: 18px; margin: 4px 0; }
.tier { display: inline-block; border-radius: 4px; padding: 1px 8px; font-size: 0.8em;
        font-weight: 700; color: #fff; }
figure.chart { margin: 12px 0 20px; }
figure.chart img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figure.chart figcaption { color: #555; font-size: 0.9em; }
footer { color: #777; font-size: 0.85em; text-align: center; margin-top: 24px; }
"""


def _tier_css() -> str:
    """One CSS class per value tier (`tier-premium`, ...), colouring badges and card borders."""
    rules = []
    for tier, colour in TIER_COLOURS.items():
        name = f"tier-{tier.lower()}"
        rules.append(f".tier.{name} {{ background: {colour}; }}")
        rules.append(f".persona-card.{name} {{ border-left-color: {colour}; }}")
    return "\n".join(rules)


def build_report(
    comparison: dict,
    personas_by_method: dict[str, dict],
    charts: dict[str, bytes],
    links: dict[str, str],
    recommended: str,
    title: str = DEFAULT_TITLE,
    run_info: dict | None = None,
    narratives: dict[str, dict] | None = None,
    leads: dict | None = None,
) -> str:
    """The complete HTML document.

    `charts` maps names like "pipeline/rfm_distributions" or "kmeans/scatter" to PNG bytes;
    `links` maps a label to the relative path of a data file; `run_info` adds header lines
    (e.g. data source, customers, run time) and is left out by default so output stays reproducible;
    `narratives` maps a method to its optional LLM narrative ({"status", "text"}), so the page says
    whether one was asked for, and why it is missing when the endpoint failed. `leads` ({"personas":
    the leads domain's personas document, "charts": {"leads/<name>": PNG}}) adds a leads section: the
    lead personas ranked by conversion rate and the leads charts.
    """
    if recommended not in personas_by_method:
        raise ValueError(f"recommended method {recommended!r} has no personas in personas_by_method")
    for label, path in links.items():
        _check_relative(label, path)
    images = {name: _image(name, png) for name, png in charts.items()}
    placed: set[str] = set()

    def take(names: list[str]) -> str:
        placed.update(names)
        return "".join(images[name] for name in names)

    chart_groups = [g for g in _chart_groups(charts) if f"{g}/" != PIPELINE_PREFIX]
    methods = list(dict.fromkeys([recommended, *personas_by_method, *chart_groups]))

    sections = [
        _comparison_section(comparison, recommended, take([n for n in charts if n == COMPARISON_CHART])),
        _personas_section(personas_by_method[recommended], recommended),
    ]
    if narratives:
        sections.append(_narratives_section(narratives, recommended))
    overview = [n for n in charts if n.startswith(PIPELINE_PREFIX) and n != COMPARISON_CHART]
    if overview:
        sections.append(_section("overview", "Data and model selection", take(overview)))
    for method in methods:
        sections.append(_method_section(method, personas_by_method.get(method), recommended,
                                        take([n for n in charts if n.startswith(f"{method}/")]),
                                        _method_metrics(comparison, method)))
    if leads:
        sections.append(_leads_section(leads["personas"], leads.get("charts") or {}))
    leftover = [n for n in charts if n not in placed]
    if leftover:
        sections.append(_section("other-charts", "Other charts", take(leftover)))
    sections.append(_files_section(links))

    header_items = {"Recommended method": recommended, **(run_info or {})}
    nav = "".join(
        f'<a href="#{html.escape(anchor)}">{html.escape(label)}</a>'
        for anchor, label in [("comparison", "Method comparison"), ("personas", "Personas"),
                              *([("overview", "Data and model selection")] if overview else []),
                              *[(_anchor(m), m) for m in methods], *([("leads", "Leads")] if leads else []),
                              ("files", "Data files")]
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{CSS}\n{_tier_css()}\n</style>\n</head>\n<body>\n"
        f"<header class=\"page\"><h1>{_e(title)}</h1>{_definition_list(header_items)}</header>\n"
        f"<main>\n<nav>{nav}</nav>\n" + "\n".join(sections) + "\n</main>\n"
        f"<footer>{_e(title)}: {len(charts) + len((leads or {}).get('charts') or {})} charts embedded; "
        "no external resources.</footer>\n"
        "</body>\n</html>\n"
    )


def write_report(html_text: str, path: str | Path) -> Path:
    """Write the report atomically (readers never see a half-written file)."""
    return atomic_write_text(Path(path), html_text)


def report_references(html_text: str) -> dict:
    """What a report shows, read back from its HTML, for checks.

    Returns personas (names on the persona cards, in order), charts (names of embedded charts),
    images (number of <img>), data_uri_images (those embedded as PNG data URIs) and
    external_references (src/href values pointing to the network; must be empty).
    """
    parser = _ReferenceParser()
    parser.feed(html_text)
    parser.close()
    return {
        "personas": parser.personas,
        "charts": parser.charts,
        "images": parser.images,
        "data_uri_images": parser.data_uri_images,
        "external_references": parser.external,
        "links": parser.links,
    }


# --- sections ------------------------------------------------------------------------------------


def _comparison_section(comparison: dict, recommended: str, chart_html: str) -> str:
    table = comparison_frame(comparison)
    recommended_run = comparison.get("recommended_run", recommended)
    columns = [c for c in REPORT_COLUMNS if c in table.columns and table[c].notna().any()]
    header = "<tr><th>run</th>" + "".join(f"<th>{_e(REPORT_COLUMNS[c])}</th>" for c in columns) + "</tr>"
    rows = []
    for run, record in zip(table.index, table.to_dict(orient="records")):
        css = ' class="recommended"' if str(run) == recommended_run else ""
        badge = ' <span class="badge">recommended</span>' if css else ""
        cells = "".join(_cell(record[c], blank="&ndash;") for c in columns)
        rows.append(f"<tr{css}><td>{_e(run)}{badge}</td>{cells}</tr>")
    body = f'<div class="wide"><table>{header}{"".join(rows)}</table></div>'
    scalars = {key.replace("_", " "): comparison[key] for key in COMPARISON_SCALARS if key in comparison}
    parts = [_definition_list(scalars), body, chart_html]
    skipped = comparison.get("skipped") or {}
    if skipped:
        items = "".join(f"<li><strong>{_e(method)}</strong>: {_e(reason)}</li>" for method, reason in skipped.items())
        parts.insert(2, f"<h3>Methods that did not run</h3><ul>{items}</ul>")
    pairwise = comparison.get("pairwise_ari")
    if isinstance(pairwise, dict) and pairwise:
        parts.append("<h3>Agreement between runs (adjusted Rand index)</h3>")
        parts.append(_numbered_matrix(pairwise))
    return _section("comparison", "Method comparison", "".join(parts))


def _numbered_matrix(matrix: dict[str, dict]) -> str:
    """Square matrix with full names on the rows and their numbers as column headers, so ten long
    run names do not make ten wide columns."""
    names = list(matrix)
    header = "<tr><th>run</th>" + "".join(f"<th>#{i}</th>" for i in range(1, len(names) + 1)) + "</tr>"
    rows = "".join(
        f"<tr><th>#{i} {_e(name)}</th>" + "".join(_cell(matrix[name].get(other)) for other in names) + "</tr>"
        for i, name in enumerate(names, start=1)
    )
    return f'<div class="wide"><table>{header}{rows}</table></div>'


def _narratives_section(narratives: dict[str, dict], recommended: str) -> str:
    """Status of the optional LLM narrative per method, and the recommended method's text."""
    items = "".join(f"<li><strong>{_e(method)}</strong>: {_e(entry['status'])}</li>" for method, entry in narratives.items())
    text = (narratives.get(recommended) or {}).get("text")
    body = f"<ul>{items}</ul>" + (f"<h3>{_e(recommended)}</h3><pre>{_e(text)}</pre>" if text else "")
    return _section("narratives", "LLM narratives", body)


def _personas_section(personas_dict: dict, method: str) -> str:
    cards = "".join(_card(p) for p in _ranked(personas_dict))
    intro = (
        f"<p>{len(personas_dict['personas'])} personas from <strong>{_e(method)}</strong>, ranked by "
        f"revenue share. Value index = revenue share / customer share; tiers: "
        + ", ".join(f'<span class="tier tier-{t.lower()}">{_e(t)}</span> &ge; {v:g}'
                    for t, v in personas_dict.get("value_tier_thresholds", {}).items())
        + ".</p>"
    )
    return _section("personas", f"Personas ({method}, recommended)", intro + f'<div class="cards">{cards}</div>')


def _card(p: dict) -> str:
    tier_class = f"tier-{p['value_tier'].lower()}"
    v = p["value"]
    numbers = {
        "Revenue share": _pct(v["revenue_share"]),
        "Value index": _number(v["value_index"], 2),
        "Avg spend": _number(v["avg_monetary"], 2),
        "Avg orders": _number(v["avg_frequency"], 1),
        "Avg days since last order": _number(v["avg_recency_days"], 0),
        "Avg order value": _number(v["avg_order_value"], 2),
        "Return rate": _pct(v["return_rate"]),
    }
    departments = p["behaviour"].get("top_departments", [])
    if departments:
        numbers["Top departments"] = _shares(departments)
    geography = p.get("geography")
    if geography:
        numbers["Top countries"] = f"{_shares(geography['top_countries'])} ({geography['concentration']} concentration)"
    basis = p.get("name_basis", {})
    named_for = [f"{basis[key]}: {basis[f'{key}_reason']}"
                 for key in ("returns", "descriptor", "department", "country", "qualifier") if key in basis]
    if named_for:
        numbers["Named for"] = "; ".join(named_for)
    noise = p.get("absorbed_noise")
    if noise and noise["count"]:
        numbers["HDBSCAN noise"] = (
            f"{noise['count']:,} customers ({_pct(noise['share'])}) in no dense region, assigned here"
        )
    if "best_matching_true_persona" in p:
        numbers["Best matching true persona"] = (
            f"{p['best_matching_true_persona']} ({_pct(p['best_matching_true_persona_share'])} of members)"
        )
    actions = "".join(
        f"<li><strong>{_e(a['action'])}</strong><br><span class=\"reason\">{_e(a['reason'])}</span></li>"
        for a in p["recommended_actions"]
    )
    return (
        f'<article class="persona-card {tier_class}" data-persona="{_e(p["persona_name"])}">'
        f'<span class="rank">#{p["rank"]}</span> <span class="tier {tier_class}">{_e(p["value_tier"])}</span>'
        + (' <span class="flag">HIGH RETURNS</span>' if p.get("high_returns") else "") +
        f'<h3 class="persona-name">{_e(p["persona_name"])}</h3>'
        f'<div>{p["size"]:,} customers ({_number(p["percentage"], 1)}%) &middot; cluster {p["cluster_id"]}</div>'
        f"{_definition_list(numbers)}"
        f'<p class="description">{_e(p["description"])}</p>'
        f"<h4>Recommended actions</h4><ul>{actions}</ul></article>"
    )


def _leads_section(personas_dict: dict, lead_charts: dict[str, bytes]) -> str:
    """The lead personas ranked by conversion rate (with the 95% Wilson interval, tier and lift over
    the overall rate) and the leads charts."""
    rows = []
    for p in _ranked(personas_dict):
        m = p["conversion_metrics"]
        tier = m["value_tier"]
        badge = f'<span class="tier tier-{tier.lower()}">{_e(tier)}</span>' if tier else "small sample"
        rows.append(
            f'<tr><td class="num">{p["rank"]}</td><td>{_e(p["persona_name"])}</td>'
            f'<td class="num">{p["cluster_size"]:,}</td><td class="num">{_number(p["cluster_percentage"], 1)}</td>'
            f'<td class="num">{_pct(m["conversion_rate"])}</td>'
            f'<td class="num">{_pct(m["ci_low"])} &ndash; {_pct(m["ci_high"])}</td>'
            f'<td>{badge}</td><td class="num">{_number(m["lift"], 2)}</td></tr>'
        )
    header = "".join(f"<th>{c}</th>" for c in ("Rank", "Lead persona", "Leads", "%", "Conversion rate",
                                               "95% interval", "Tier", "Lift"))
    intro = (
        f"<p>{len(rows)} lead personas from {personas_dict['total_leads']:,} leads, ranked by conversion rate "
        f"(overall {_pct(personas_dict['overall_conversion_rate'])}); lift = persona rate / overall rate; "
        f"a persona under {personas_dict['min_cluster_size']:,} leads is a small sample and gets no tier.</p>"
    )
    images = "".join(
        _image(name, png, LEADS_CHART_CAPTIONS.get(name.rsplit("/", 1)[-1])) for name, png in lead_charts.items()
    )
    table = f'<div class="wide"><table><tr>{header}</tr>{"".join(rows)}</table></div>'
    return _section("leads", "Leads: conversion personas", intro + table + images)


def _method_metrics(comparison: dict, method: str) -> str:
    """The metrics only this method reports (BIC, partition coefficient, noise count, ...), per run."""
    runs = {run: values for run, values in comparison.get("method_metrics", {}).items()
            if run.split("/", 1)[0] == method and values}
    return "".join(f"<h3>{_e(run)}: method metrics</h3>{_definition_list(values)}" for run, values in runs.items())


def _method_section(method: str, personas_dict: dict | None, recommended: str, chart_html: str,
                    metrics_html: str = "") -> str:
    badge = ' <span class="badge">recommended</span>' if method == recommended else ""
    parts = [chart_html, metrics_html]
    if personas_dict:
        parts.append("<h3>Personas</h3>" + _persona_table(personas_dict))
        crosstab = personas_dict.get("truth_crosstab")
        if crosstab:
            parts.append("<h3>True persona (rows) &times; cluster (columns), synthetic data</h3>")
            parts.append(f'<div class="wide">{_matrix_table(crosstab, corner="true persona")}</div>')
    return (f'<section id="{_e(_anchor(method))}"><h2>{_e(method)}{badge}</h2>'
            + "".join(parts) + "</section>")


def _persona_table(personas_dict: dict) -> str:
    columns = ["Rank", "Persona", "Tier", "Cluster", "Customers", "%", "Revenue share", "Value index",
               "Avg spend", "Avg orders", "Top department", "Actions"]
    personas = _ranked(personas_dict)
    with_truth = any("best_matching_true_persona" in p for p in personas)
    if with_truth:
        columns.append("Best matching true persona")
    rows = []
    for p in personas:
        departments = p["behaviour"].get("top_departments", [])
        cells = [
            f'<td class="num">{p["rank"]}</td>',
            f"<td>{_e(p['persona_name'])}</td>",
            f'<td><span class="tier tier-{p["value_tier"].lower()}">{_e(p["value_tier"])}</span></td>',
            f'<td class="num">{p["cluster_id"]}</td>',
            f'<td class="num">{p["size"]:,}</td>',
            f'<td class="num">{_number(p["percentage"], 1)}</td>',
            f'<td class="num">{_pct(p["value"]["revenue_share"])}</td>',
            f'<td class="num">{_number(p["value"]["value_index"], 2)}</td>',
            f'<td class="num">{_number(p["value"]["avg_monetary"], 2)}</td>',
            f'<td class="num">{_number(p["value"]["avg_frequency"], 1)}</td>',
            f"<td>{_e(departments[0]['name']) if departments else ''}</td>",
            f"<td>{_e('; '.join(a['action'] for a in p['recommended_actions']))}</td>",
        ]
        if with_truth:
            match = p.get("best_matching_true_persona")
            cells.append(
                f"<td>{_e(match)} ({_pct(p['best_matching_true_persona_share'])})</td>" if match else "<td></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{_e(c)}</th>" for c in columns)
    return f'<div class="wide"><table><tr>{header}</tr>{"".join(rows)}</table></div>'


def _files_section(links: dict[str, str]) -> str:
    if not links:
        return _section("files", "Data files", "<p>No data files were linked.</p>")
    items = "".join(
        f'<li><a href="{_e(quote(path.replace(chr(92), "/"), safe="/._-~"))}">{_e(label)}</a> '
        f"<code>{_e(path)}</code></li>"
        for label, path in links.items()
    )
    return _section("files", "Data files", f"<p>Paths are relative to this report.</p><ul>{items}</ul>")


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(heading)}</h2>{body}</section>'


# --- pieces --------------------------------------------------------------------------------------


def _image(name: str, png: bytes, caption: str | None = None) -> str:
    """A figure with the chart inlined as a data URI; width/height from the PNG header."""
    width, height = png_size(png)
    caption = caption or CHART_CAPTIONS.get(name.rsplit("/", 1)[-1], name.rsplit("/", 1)[-1])
    return (
        f'<figure class="chart" data-chart="{_e(name)}">'
        f'<img src="{data_uri(png)}" alt="{_e(name)}" width="{width}" height="{height}">'
        f"<figcaption>{_e(caption)} <code>{_e(name)}</code></figcaption></figure>"
    )


def _matrix_table(matrix: dict[str, dict], corner: str) -> str:
    columns = list(dict.fromkeys(c for row in matrix.values() for c in row))
    header = f"<tr><th>{_e(corner)}</th>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"
    rows = "".join(
        f"<tr><th>{_e(name)}</th>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>"
        for name, row in matrix.items()
    )
    return f"<table>{header}{rows}</table>"


def _definition_list(items: dict) -> str:
    if not items:
        return ""
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_plain_value(v))}</dd>" for k, v in items.items())
    return f"<dl>{body}</dl>"


def _cell(value, blank: str | None = None) -> str:
    """A table cell; `blank` (HTML) replaces missing values, e.g. a dash where a metric does not apply."""
    numeric = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    css = ' class="num"' if numeric else ""
    if blank is not None and _plain_value(value) == "n/a":
        return f"<td{css}>{blank}</td>"
    return f"<td{css}>{_e(_plain_value(value))}</td>"


def _plain_value(value) -> str:
    """Whole numbers without decimals, other numbers at 3 decimals, missing as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:.0f}" if number.is_integer() else f"{number:.3f}"


def _shares(entries: list[dict]) -> str:
    return ", ".join(f"{entry['name']} ({_pct(entry['share'])})" for entry in entries)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ranked(personas_dict: dict) -> list[dict]:
    return sorted(personas_dict["personas"], key=lambda p: p["rank"])


def _chart_groups(charts: dict[str, bytes]) -> list[str]:
    return list(dict.fromkeys(name.split("/", 1)[0] for name in charts if "/" in name))


def _anchor(method: str) -> str:
    return "method-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in method)


def _check_relative(label: str, path: str) -> None:
    """Links must stay inside the report's folder tree: no network or absolute paths."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith(("/", "\\")):
        raise ValueError(f"link {label!r} must be a relative path, got {path!r}")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


class _ReferenceParser(HTMLParser):
    """Collects persona cards, embedded charts, images and outgoing references of a report."""

    def __init__(self):
        super().__init__()
        self.personas: list[str] = []
        self.charts: list[str] = []
        self.images = 0
        self.data_uri_images = 0
        self.external: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if "persona-card" in classes:
            self.personas.append(attributes.get("data-persona", ""))
        if "data-chart" in attributes:
            self.charts.append(attributes["data-chart"])
        if tag == "img":
            self.images += 1
            if (attributes.get("src") or "").startswith("data:image/png;base64,"):
                self.data_uri_images += 1
        for name in ("src", "href"):
            target = attributes.get(name)
            if target is None:
                continue
            parts = urlsplit(target)
            if parts.scheme not in ("", "data") or parts.netloc:
                self.external.append(target)
            elif name == "href" and not target.startswith("#"):
                self.links.append(target)

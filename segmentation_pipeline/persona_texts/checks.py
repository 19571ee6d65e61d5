"""Invariants of the persona-texts outputs as plain `*_problems(...) -> list[str]` functions (an
empty list = fine); the Dagster asset checks are thin wrappers around them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from segmentation_pipeline.persona_texts.corpus import PersonaCorpus
from segmentation_pipeline.persona_texts.visualization import MAP_DIV_ID

SYMMETRY_TOLERANCE = 1e-6
EXTERNAL_REFERENCE = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)


def dissimilarity_problems(matrix: np.ndarray | pd.DataFrame) -> list[str]:
    """Square, symmetric, zero diagonal, finite values within [0, 2]; a DataFrame must be indexed
    (rows and columns) by persona index 0..n-1."""
    problems = []
    if isinstance(matrix, pd.DataFrame):
        expected = list(range(len(matrix)))
        if list(matrix.index) != expected or list(matrix.columns) != expected:
            problems.append("rows and columns are not indexed by persona index 0..n-1")
        matrix = matrix.to_numpy()
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        return problems + [f"not square: shape {matrix.shape}"]
    if not np.isfinite(matrix).all():
        problems.append(f"{int((~np.isfinite(matrix)).sum())} cells are not finite")
    asymmetry = float(np.abs(matrix - matrix.T).max()) if matrix.size else 0.0
    if asymmetry > SYMMETRY_TOLERANCE:
        problems.append(f"not symmetric: largest |d(i,j) - d(j,i)| = {asymmetry:.3g}")
    if matrix.size and np.abs(np.diag(matrix)).max() > 0:
        problems.append(f"{int((np.diag(matrix) != 0).sum())} diagonal cells are not 0")
    if matrix.size and (matrix.min() < 0 or matrix.max() > 2):
        problems.append(f"values outside [0, 2]: min {matrix.min():.4g}, max {matrix.max():.4g}")
    return problems


def assignment_problems(table: pd.DataFrame, n_personas: int, reported_noise: int) -> list[str]:
    """Every persona in exactly one row, with a cluster id >= 0 or -1 (noise); the -1 rows match the
    noise count reported; cluster ids are 0..k-1 with no empty cluster."""
    problems = []
    indices = table["persona_index"].to_numpy()
    if len(indices) != n_personas or set(indices.tolist()) != set(range(n_personas)):
        problems.append(f"{len(indices)} rows for {n_personas} personas (each persona must appear exactly once)")
    elif len(set(indices.tolist())) != len(indices):
        problems.append("a persona appears more than once")
    ids = table["cluster_id"].to_numpy()
    if (ids < -1).any():
        problems.append(f"invalid cluster ids: {sorted(set(ids[ids < -1].tolist()))}")
    noise = int((ids == -1).sum())
    if noise != reported_noise:
        problems.append(f"{noise} personas have cluster -1 but {reported_noise} were reported as noise")
    present = sorted(set(ids[ids >= 0].tolist()))
    if present != list(range(len(present))):
        problems.append(f"cluster ids are not 0..k-1: {present}")
    return problems


def label_problems(themes: dict) -> list[str]:
    """Every cluster has a non-empty label and no two clusters share one."""
    labels = [c["label"] for c in themes["clusters"]]
    problems = [f"cluster {c['cluster_id']} has an empty label" for c in themes["clusters"] if not str(c["label"]).strip()]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        problems.append(f"labels shared by several clusters: {repeated}")
    return problems


def section_problems(corpus: PersonaCorpus) -> list[str]:
    """No section went missing: sections read = personas + rejected, each rejection with a reason."""
    problems = []
    accounted = len(corpus.personas) + len(corpus.rejected)
    if corpus.sections != accounted:
        problems.append(f"{corpus.sections} sections read but {accounted} accounted for (personas + rejected)")
    if len(corpus.rejected) and corpus.rejected["reason"].isna().any():
        problems.append("a rejected section has no reason")
    return problems


def html_problems(html: str) -> list[str]:
    """The map is present, plotly.js is inlined and nothing is loaded from the network."""
    problems = []
    if f'id="{MAP_DIV_ID}"' not in html:
        problems.append("the persona map element is missing")
    if "Plotly.newPlot" not in html or "* plotly.js v" not in html:
        problems.append("plotly.js is not inlined")
    external = EXTERNAL_REFERENCE.findall(html)
    if external:
        problems.append(f"{len(external)} network references, e.g. {external[0]!r}")
    return problems

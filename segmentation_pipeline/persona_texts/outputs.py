"""The persona-texts outputs as tables and bytes, serialised deterministically (same inputs and seed ->
byte-identical files): fixed column order, fixed float formats, "\n" line ends, sorted-free JSON in
insertion order, no timestamps.

The dissimilarity matrix of 10,000 personas has 100 million cells, so it is streamed to its file
block by block with a lookup table of formatted values instead of being formatted cell by cell.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation_pipeline.persona_texts.clusters import PersonaClusters
from segmentation_pipeline.persona_texts.corpus import PersonaCorpus
from segmentation_pipeline.persona_texts.themes import cluster_label_map
from segmentation_pipeline.storage import atomic_path

CLUSTER_COLUMNS = ("persona_index", "persona_id", "cluster_id", "cluster_label")
MATRIX_DECIMALS = 4
MATRIX_BLOCK_ROWS = 512
_SCALE = 10**MATRIX_DECIMALS
_CELL = np.array([f"{value / _SCALE:.{MATRIX_DECIMALS}f}" for value in range(2 * _SCALE + 1)], dtype=f"S{MATRIX_DECIMALS + 2}")


def clusters_table(corpus: PersonaCorpus, clusters: PersonaClusters, themes: dict, classified: pd.DataFrame) -> pd.DataFrame:
    """persona_index, persona_id, cluster_id, cluster_label, then each dimension and its confidence."""
    labels = cluster_label_map(themes)
    table = pd.DataFrame({
        "persona_index": corpus.personas["persona_index"].to_numpy(),
        "persona_id": corpus.personas["persona_id"].to_numpy(),
        "cluster_id": clusters.labels,
        "cluster_label": [labels[int(c)] for c in clusters.labels],
    })
    return pd.concat([table, classified.reset_index(drop=True)], axis=1)


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n", float_format="%.6g").encode("utf-8")


def json_bytes(document) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_dissimilarity_csv(matrix: np.ndarray, path: str | Path) -> Path:
    """The square matrix as CSV (header `persona_index,0,1,...`, then one row per persona with its
    index first), values with MATRIX_DECIMALS decimals; written atomically."""
    n = len(matrix)
    with atomic_path(Path(path)) as temporary, temporary.open("wb") as handle:
        handle.write(b"persona_index," + ",".join(map(str, range(n))).encode() + b"\n")
        width = MATRIX_DECIMALS + 3  # "0.1234" and its separator
        for start in range(0, n, MATRIX_BLOCK_ROWS):
            block = matrix[start : start + MATRIX_BLOCK_ROWS]
            codes = np.clip(np.rint(block * _SCALE), 0, 2 * _SCALE).astype(np.int32)
            cells = np.empty((len(block), n, width), dtype=np.uint8)
            cells[:, :, : width - 1] = _CELL[codes].view(np.uint8).reshape(len(block), n, width - 1)
            cells[:, :, width - 1] = ord(",")
            cells[:, -1, width - 1] = ord("\n")
            rows = cells.reshape(len(block), -1)
            for offset, row in enumerate(rows):
                handle.write(b"%d," % (start + offset))
                handle.write(row.tobytes())
    return Path(path)


def read_dissimilarity_csv(path: str | Path) -> pd.DataFrame:
    """The matrix back as a DataFrame indexed by persona index (for checks and small corpora)."""
    table = pd.read_csv(path, index_col="persona_index")
    table.columns = table.columns.astype(int)
    return table

"""Pairwise (dis)similarity of personas, redundant pairs, and similarity search without refitting.

All similarities are cosine similarities of the unit persona vectors (a dot product). The search
index stores what a query needs: the fitted embedder (TF-IDF vocabulary + LSA projection, or the
reference to the local model2vec folder) and the persona vectors, ids, texts and cluster labels,
so `similar(text)` only embeds the query and takes one matrix-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.persona_texts.embedding import Embedder
from segmentation_pipeline.storage import atomic_path

PAIR_BLOCK_ROWS = 2_048  # rows of the similarity matrix held at once when listing redundant pairs
INDEX_FORMAT = 1
REDUNDANT_COLUMNS = (
    "persona_index_a", "persona_id_a", "persona_index_b", "persona_id_b", "similarity", "text_a", "text_b",
)
SIMILAR_COLUMNS = ("rank", "persona_index", "persona_id", "similarity", "cluster_label", "text")


def dissimilarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """1 - cosine similarity, float32, exactly symmetric, zero diagonal, within [0, 2]."""
    vectors = np.asarray(vectors, dtype=np.float32)
    distance = 1.0 - vectors @ vectors.T
    distance += distance.T  # the product's rounding may differ between (i, j) and (j, i)
    distance *= 0.5
    np.clip(distance, 0.0, 2.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    return distance


def redundant_pairs(vectors: np.ndarray, personas: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Every pair of personas with cosine similarity >= threshold, most similar first (then by index),
    with both ids and texts; computed block by block so memory stays linear in the corpus size."""
    vectors = np.asarray(vectors, dtype=np.float32)
    found_a, found_b, found_s = [], [], []
    for start in range(0, len(vectors), PAIR_BLOCK_ROWS):
        block = vectors[start : start + PAIR_BLOCK_ROWS] @ vectors.T
        rows, columns = np.nonzero(block >= threshold)
        above = columns > rows + start  # each pair once, no persona with itself
        found_a.append(rows[above] + start)
        found_b.append(columns[above])
        found_s.append(block[rows[above], columns[above]])
    a = np.concatenate(found_a) if found_a else np.array([], dtype=int)
    b = np.concatenate(found_b) if found_b else np.array([], dtype=int)
    similarity = np.minimum(np.concatenate(found_s), 1.0) if found_s else np.array([], dtype=np.float32)
    order = np.lexsort((b, a, -similarity))
    a, b, similarity = a[order], b[order], similarity[order]
    ids, texts = personas["persona_id"].to_numpy(), personas["text"].to_numpy()
    return pd.DataFrame({
        "persona_index_a": a, "persona_id_a": ids[a], "persona_index_b": b, "persona_id_b": ids[b],
        "similarity": np.round(similarity.astype(np.float64), 4), "text_a": texts[a], "text_b": texts[b],
    }, columns=list(REDUNDANT_COLUMNS))


@dataclass
class SimilarityIndex:
    """What a similarity query needs; `metadata` records the embedding backend and model."""

    embedder: Embedder
    vectors: np.ndarray  # (n, d) float32 unit rows
    persona_ids: list[str]
    texts: list[str]
    cluster_labels: list[str]
    metadata: dict = field(default_factory=dict)

    def similar(self, text: str, top: int = 5) -> pd.DataFrame:
        """The `top` personas most similar to `text` (SIMILAR_COLUMNS), best first, ties by index."""
        if not text.strip():
            raise InputDataError("similar: the description is empty")
        query = self.embedder.encode([text])[0]
        scores = self.vectors @ query
        top = max(0, min(top, len(scores)))
        candidates = np.argpartition(-scores, top - 1)[:top] if 0 < top < len(scores) else np.arange(len(scores))
        best = candidates[np.lexsort((candidates, -scores[candidates]))][:top]
        return pd.DataFrame({
            "rank": np.arange(1, len(best) + 1),
            "persona_index": best,
            "persona_id": [self.persona_ids[i] for i in best],
            "similarity": np.round(scores[best].astype(np.float64), 4),
            "cluster_label": [self.cluster_labels[i] for i in best],
            "text": [self.texts[i] for i in best],
        }, columns=list(SIMILAR_COLUMNS))


def save_similarity_index(index: SimilarityIndex, path: str | Path) -> Path:
    """Store the index (atomically) for later queries."""
    with atomic_path(Path(path)) as temporary:
        joblib.dump({"format": INDEX_FORMAT, "index": index}, temporary)
    return Path(path)


def load_similarity_index(path: str | Path) -> SimilarityIndex:
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"similarity index '{path}' not found: materialize the persona_texts assets first")
    stored = joblib.load(path)
    if not isinstance(stored, dict) or stored.get("format") != INDEX_FORMAT:
        raise InputDataError(f"similarity index '{path}' was written by another version: materialize it again")
    return stored["index"]


def similar(text: str, index_path: str | Path, top: int = 5) -> pd.DataFrame:
    """The core of `segmentation-pipeline similar "a description" [--top 5]`: closest stored personas."""
    return load_similarity_index(index_path).similar(text, top)


def format_similar(table: pd.DataFrame, width: int = 100) -> str:
    """Plain-text lines for the command line: rank, similarity, id, cluster, then the text's start."""
    lines = []
    for row in table.itertuples(index=False):
        text = " ".join(row.text.split())
        shown = text if len(text) <= width else text[: width - 1] + "…"
        lines.append(f"{row.rank:>2}. {row.similarity:.3f}  {row.persona_id}  [{row.cluster_label}]\n    {shown}")
    return "\n".join(lines)

"""How good the clustering and its themes are, from the data alone (plus the known families when the
corpus has them).

Geometry: silhouette (on the shared fixed sample), Davies-Bouldin and Calinski-Harabasz, measured on
clustered personas only (noise has no cluster to be compact in). Themes: topic diversity (share of
distinct terms among all clusters' top terms: 1 = no two clusters share a term) and coherence (NPMI of
each cluster's top-term pairs, from which personas of the corpus itself use both: 1 = always together,
0 = independent, -1 = never together). Agreement: ARI with the known families when every persona has one.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from segmentation_pipeline.clustering.metrics import SilhouetteScorer, quality_metrics
from segmentation_pipeline.clustering.selection import sample_rows
from segmentation_pipeline.persona_texts.clusters import SILHOUETTE_SAMPLE_SIZE
from segmentation_pipeline.persona_texts.themes import TOKEN_PATTERN

COHERENCE_TERMS = 10  # top terms per cluster whose pairs are scored


def geometry_metrics(vectors: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    clustered = np.flatnonzero(labels >= 0)
    sample = clustered[sample_rows(len(clustered), SILHOUETTE_SAMPLE_SIZE, seed)]
    silhouette = SilhouetteScorer(vectors[sample]).score(labels[sample]) if len(sample) else None
    metrics = quality_metrics(vectors[clustered], labels[clustered], silhouette)
    return {name: None if value is None else round(float(value), 6) for name, value in metrics.items()}


def topic_diversity(themes: dict, top: int = COHERENCE_TERMS) -> float | None:
    terms = [t["term"] for cluster in themes["clusters"] for t in cluster["terms"][:top]]
    return round(len(set(terms)) / len(terms), 6) if terms else None


def npmi_coherence(texts: list[str], themes: dict, top: int = COHERENCE_TERMS) -> dict:
    """{"mean": mean NPMI over clusters, "per_cluster": {id: NPMI}}: document co-occurrence in `texts`."""
    top_terms = {c["cluster_id"]: [t["term"] for t in c["terms"][:top]] for c in themes["clusters"]}
    vocabulary = sorted({term for terms in top_terms.values() for term in terms})
    if not vocabulary:
        return {"mean": None, "per_cluster": {}}
    present = CountVectorizer(
        vocabulary=vocabulary, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, binary=True, dtype=np.int32
    ).transform(texts)
    together = (present.T @ present).toarray() / len(texts)
    alone = np.diag(together)
    column = {term: i for i, term in enumerate(vocabulary)}
    per_cluster = {}
    for cluster_id, terms in top_terms.items():
        scores = [_npmi(together[column[a], column[b]], alone[column[a]], alone[column[b]]) for a, b in combinations(terms, 2)]
        per_cluster[cluster_id] = round(float(np.mean(scores)), 6) if scores else None
    values = [v for v in per_cluster.values() if v is not None]
    return {"mean": round(float(np.mean(values)), 6) if values else None, "per_cluster": per_cluster}


def _npmi(p_joint: float, p_a: float, p_b: float) -> float:
    if p_joint <= 0:
        return -1.0
    if p_joint >= 1:
        return 1.0
    return float(np.log(p_joint / (p_a * p_b)) / -np.log(p_joint))


def family_agreement(labels: np.ndarray, families: list[str | None]) -> dict | None:
    """ARI and NMI against the known families (noise counts as its own group); None without truth."""
    if not families or any(f is None for f in families):
        return None
    return {
        "ari": round(float(adjusted_rand_score(families, labels)), 6),
        "nmi": round(float(normalized_mutual_info_score(families, labels)), 6),
        "families": len(set(families)),
    }


def clustering_quality(
    vectors: np.ndarray,
    labels: np.ndarray,
    texts: list[str],
    themes: dict,
    stability: dict,
    families: list[str | None] | None,
    seed: int,
) -> dict:
    """Every quality figure of one analysis, JSON-ready."""
    return {
        **geometry_metrics(vectors, labels, seed),
        "topic_diversity": topic_diversity(themes),
        "coherence_npmi": npmi_coherence(texts, themes),
        "stability": stability,
        "truth": family_agreement(labels, families),
    }

"""Group persona vectors: k-means with k by silhouette, DBSCAN with eps from the k-distance knee, or
HDBSCAN; then the outlier policy for personas the density methods leave in no cluster.

The k-means path is the shared customer-clustering machinery (`select_k` over the seed-derived
selection and silhouette samples, `KMeansMethod`, `size_order_map`), applied to unit vectors, where
Euclidean distance ranks pairs exactly like cosine similarity. Cluster ids are published by
descending size (ties by centroid), so they do not depend on an algorithm's arbitrary numbering;
noise is -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from segmentation_pipeline.clustering.base import ClusteringSettings
from segmentation_pipeline.clustering.kmeans import KMeansMethod
from segmentation_pipeline.clustering.metrics import SilhouetteScorer
from segmentation_pipeline.clustering.runner import size_order_map
from segmentation_pipeline.clustering.selection import (
    elbow_index,
    sample_rows,
    select_k,
)
from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.persona_texts.embedding import unit_rows
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings

NOISE = -1
SELECTION_SAMPLE_SIZE = 5_000  # personas the candidate k-means models are fitted on
SILHOUETTE_SAMPLE_SIZE = 2_000  # the fixed sample silhouette is measured on
KMEANS_N_INIT = 3
DENSITY_DIMENSIONS = 10  # DBSCAN / HDBSCAN run on this many principal components: in 100 dimensions
# distances concentrate (every persona is about equally far from every other) and density has no contrast
K_DISTANCE_POINTS = 500  # points of the k-distance curve kept for the chart


@dataclass(frozen=True)
class PersonaClusters:
    """labels: cluster id per persona (0 = largest cluster; -1 = noise).
    params: what was fitted with ("method", "k", "k_source", "eps", "min_samples", ...).
    selection_curve: k-means with k auto: {"criterion", "k", "score", "chosen_k", "rule"}.
    k_distance: DBSCAN: {"min_samples", "rank", "distance", "knee_index", "eps"}, the sorted distance of
    each persona to its min_samples-th neighbour (descending, thinned to K_DISTANCE_POINTS) and the knee.
    noise: {"policy", "min_similarity", "noise_before", "reassigned", "noise", "noise_share_before",
    "noise_share"}: personas in no cluster before and after the outlier policy."""

    labels: np.ndarray
    n_clusters: int
    params: dict
    selection_curve: dict | None
    k_distance: dict | None
    noise: dict


def cluster_personas(vectors: np.ndarray, settings: PersonaTextsSettings, seed: int | None = None) -> PersonaClusters:
    """Cluster the unit persona vectors with the configured method (seed: settings.seed by default)."""
    seed = settings.seed if seed is None else seed
    n = len(vectors)
    if n < 3:
        raise InputDataError(f"persona corpus: {n} personas are too few to cluster (need at least 3)")
    with threadpool_limits(limits=1):  # one thread: bit-identical labels on every run
        if settings.method == "kmeans":
            labels, params, curve, k_distance = _kmeans(vectors, settings, seed)
        elif settings.method == "dbscan":
            labels, params, curve, k_distance = _dbscan(vectors, settings)
        else:
            labels, params, curve, k_distance = _hdbscan(vectors, settings)
    labels, noise = apply_outlier_policy(vectors, labels, settings.outliers.policy, settings.outliers.min_similarity)
    labels = _by_size(labels, vectors)
    n_clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
    return PersonaClusters(labels, n_clusters, {"method": settings.method, **params}, curve, k_distance, noise)


def _kmeans_settings(settings: PersonaTextsSettings, seed: int) -> ClusteringSettings:
    k_max = max(settings.k_max, settings.k) if settings.k != "auto" else settings.k_max
    return ClusteringSettings(
        k=settings.k, k_min=settings.k_min, k_max=k_max, seed=seed, kmeans_n_init=KMEANS_N_INIT,
        selection_sample_size=SELECTION_SAMPLE_SIZE, silhouette_sample_size=SILHOUETTE_SAMPLE_SIZE, bootstraps=0,
    )


def _kmeans(vectors: np.ndarray, settings: PersonaTextsSettings, seed: int):
    shared = _kmeans_settings(settings, seed)
    method = KMeansMethod()
    silhouette = SilhouetteScorer(vectors[sample_rows(len(vectors), shared.silhouette_sample_size, seed)])
    selection = select_k(method, vectors, shared, silhouette)
    labels = method.fit(vectors, selection.k, shared, seed).assign(vectors).labels
    params = {"k": selection.k, "k_source": selection.source, "k_min": shared.k_min, "k_max": shared.k_max,
              "n_init": KMEANS_N_INIT, "seed": seed}
    return labels, params, selection.curve, None


def kmeans_labels(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """One k-means fit with a fixed k (used for stability across seeds)."""
    with threadpool_limits(limits=1):
        return KMeansMethod().fit(vectors, k, ClusteringSettings(k_max=max(k, 2), kmeans_n_init=KMEANS_N_INIT), seed).assign(vectors).labels


def k_distance_knee(vectors: np.ndarray, min_samples: int) -> dict:
    """DBSCAN's eps recommendation: the knee of the sorted distances to the min_samples-th neighbour
    (the point counts as its own first neighbour, as in DBSCAN's core-point rule). Beyond the knee
    distances grow fast: those personas are in sparse regions."""
    neighbours = min(min_samples, len(vectors))
    distances = NearestNeighbors(n_neighbors=neighbours).fit(vectors).kneighbors(vectors)[0][:, -1]
    falling = np.sort(distances)[::-1]
    knee = elbow_index(falling) if falling[0] > falling[-1] else len(falling) - 1
    eps = float(falling[knee])
    shown = np.unique(np.linspace(0, len(falling) - 1, min(K_DISTANCE_POINTS, len(falling))).round().astype(int))
    return {
        "min_samples": neighbours,
        "rank": shown.tolist(),
        "distance": [round(float(d), 6) for d in falling[shown]],
        "knee_index": int(knee),
        "eps": round(eps, 6),
    }


def density_space(vectors: np.ndarray) -> np.ndarray:
    """The first DENSITY_DIMENSIONS principal components of the persona vectors."""
    dimensions = min(DENSITY_DIMENSIONS, vectors.shape[1], len(vectors) - 1)
    return PCA(n_components=dimensions, svd_solver="full").fit_transform(vectors)


def _dbscan(vectors: np.ndarray, settings: PersonaTextsSettings):
    reduced = density_space(vectors)
    curve = k_distance_knee(reduced, settings.min_cluster_size)
    eps = max(curve["eps"], 1e-6)
    labels = DBSCAN(eps=eps, min_samples=curve["min_samples"]).fit(reduced).labels_
    params = {"eps": eps, "eps_source": "k-distance knee", "min_samples": curve["min_samples"],
              "pca_dimensions": reduced.shape[1]}
    return labels, params, None, curve


def _hdbscan(vectors: np.ndarray, settings: PersonaTextsSettings):
    reduced = density_space(vectors)
    labels = HDBSCAN(min_cluster_size=settings.min_cluster_size, copy=True).fit(reduced).labels_
    return labels, {"min_cluster_size": settings.min_cluster_size, "pca_dimensions": reduced.shape[1]}, None, None


def apply_outlier_policy(vectors: np.ndarray, labels: np.ndarray, policy: str, min_similarity: float) -> tuple[np.ndarray, dict]:
    """`keep`: noise stays -1. `nearest`: a noise persona joins the cluster whose (unit) centroid it is
    most similar to, if that cosine similarity reaches min_similarity. Counts before and after."""
    labels = np.asarray(labels).copy()
    noise = labels == NOISE
    before = int(noise.sum())
    reassigned = 0
    if policy == "nearest" and noise.any() and (~noise).any():
        clusters = np.unique(labels[~noise])
        centroids = unit_rows(np.stack([vectors[labels == c].mean(axis=0) for c in clusters]))
        similarity = vectors[noise] @ centroids.T
        best = similarity.argmax(axis=1)
        close = similarity[np.arange(len(best)), best] >= min_similarity
        rows = np.flatnonzero(noise)[close]
        labels[rows] = clusters[best[close]]
        reassigned = int(close.sum())
    n = len(labels)
    return labels, {
        "policy": policy,
        "min_similarity": min_similarity,
        "noise_before": before,
        "reassigned": reassigned,
        "noise": before - reassigned,
        "noise_share_before": round(before / n, 6),
        "noise_share": round((before - reassigned) / n, 6),
    }


def _by_size(labels: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by descending size (ties by centroid); noise stays -1."""
    clustered = labels >= 0
    if not clustered.any():
        return labels
    present, compact = np.unique(labels[clustered], return_inverse=True)
    dense = np.full(len(labels), NOISE)
    dense[clustered] = compact
    label_map = size_order_map(dense, vectors, len(present))
    published = np.full(len(labels), NOISE)
    published[clustered] = label_map[dense[clustered]]
    return published


def seed_stability(vectors: np.ndarray, clusters: PersonaClusters, settings: PersonaTextsSettings) -> dict:
    """Agreement (ARI) of the clustering with refits from `settings.stability_seeds` other seeds.
    k-means keeps the chosen k (the question is whether the partition moves, not k); DBSCAN and
    HDBSCAN use no seed, so their refits are identical by construction (reported as such)."""
    seeds = [settings.seed + offset for offset in range(1, settings.stability_seeds + 1)]
    if not seeds:
        return {"seeds": [], "ari": [], "ari_mean": None, "ari_min": None, "note": "stability_seeds is 0"}
    if settings.method == "kmeans":
        scores = [adjusted_rand_score(clusters.labels, kmeans_labels(vectors, clusters.params["k"], s)) for s in seeds]
        note = "k-means refitted with the chosen k"
    else:
        scores = [1.0 for _ in seeds]
        note = f"{settings.method} is deterministic: no seed changes its result"
    return {
        "seeds": seeds,
        "ari": [round(float(s), 6) for s in scores],
        "ari_mean": round(float(np.mean(scores)), 6),
        "ari_min": round(float(np.min(scores)), 6),
        "note": note,
    }

"""Fuzzy c-means (scikit-fuzzy, `skfuzzy.cluster.cmeans`): every customer belongs to every cluster
with a membership in [0, 1] (rows sum to 1); the label is the largest membership, which is also the
confidence.

Why scikit-fuzzy: it is the project's declared fuzzy dependency (the `fuzzy-c-means` package is not
part of the environment), it is vectorised (scipy `cdist` per iteration) and it accepts an explicit
initial partition. We always pass that partition instead of `seed=`, because `cmeans(seed=...)`
reseeds numpy's global random state (a side effect on everything else in the process) and starts
from a random partition. Our start is the memberships to k-means centres fitted with the run's seed:
deterministic, free of global state, and close to the optimum, so it needs far fewer iterations.

Convergence: cmeans stops when the Frobenius norm of the membership change falls below `error`; we
scale it to the matrix size so the rule means "the RMS change of a membership is below
MEMBERSHIP_TOLERANCE" whatever the number of customers.

New customers: with the centres fixed the membership update has a closed form, so a single step of
`skfuzzy.cluster.cmeans_predict` gives the exact memberships (no random start involved).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from skfuzzy.cluster import cmeans, cmeans_predict

from segmentation_pipeline.clustering.base import (
    Assignment,
    ClusteringMethod,
    ClusteringSettings,
    ClusterModel,
    Diagnostics,
)
from segmentation_pipeline.clustering.kmeans import fit_kmeans
from segmentation_pipeline.clustering.metrics import membership_entropy, per_cluster

# Measured on skewed customer-like data: stopping at 1e-4 agrees with the fully converged partition
# to ARI >= 0.98 in a fraction of the iterations. Candidates for k are only scored by silhouette,
# which the coarser 1e-3 (ARI >= 0.89 at k = 8, >= 0.99 up to k = 5) barely moves, at ~3x the speed.
MEMBERSHIP_TOLERANCE = 1e-4
CANDIDATE_TOLERANCE = 1e-3
MAX_ITERATIONS = 300
AMBIGUOUS_BELOW = 0.5  # a customer whose largest membership is below this has no majority cluster


class FuzzyCMeansModel(ClusterModel):
    def __init__(self, centers: np.ndarray, fuzziness: float, iterations: int = 0):
        self.centers = centers
        self.fuzziness = fuzziness
        self.iterations = iterations
        self.n_clusters = len(centers)

    def assign(self, X: np.ndarray) -> Assignment:
        uniform_start = np.full((self.n_clusters, len(X)), 1.0 / self.n_clusters)
        memberships = cmeans_predict(
            X.T, self.centers, self.fuzziness, error=0.0, maxiter=1, init=uniform_start
        )[0].T
        return Assignment(memberships.argmax(axis=1), memberships, memberships.max(axis=1))


def _fit(X: np.ndarray, k: int, fuzziness: float, seed: int, tolerance: float) -> FuzzyCMeansModel:
    start = FuzzyCMeansModel(fit_kmeans(X, k, 1, seed).cluster_centers_, fuzziness)
    centers, *_, iterations, _ = cmeans(
        X.T,
        k,
        fuzziness,
        error=tolerance * np.sqrt(k * len(X)),  # Frobenius norm -> RMS change per membership
        maxiter=MAX_ITERATIONS,
        init=start.assign(X).memberships.T,
    )
    return FuzzyCMeansModel(centers, fuzziness, int(iterations))


class FuzzyCMeansMethod(ClusteringMethod):
    name = "fuzzy_cmeans"

    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> FuzzyCMeansModel:
        return _fit(X, k, settings.fuzziness, seed, MEMBERSHIP_TOLERANCE)

    def candidates(self, X: np.ndarray, ks: Sequence[int], settings: ClusteringSettings) -> Iterator[FuzzyCMeansModel]:
        for k in ks:
            yield _fit(X, k, settings.fuzziness, settings.seed, CANDIDATE_TOLERANCE)

    def parameters(self, model: FuzzyCMeansModel, settings: ClusteringSettings) -> dict:
        return {
            "fuzziness": settings.fuzziness,
            "membership_tolerance": MEMBERSHIP_TOLERANCE,
            "candidate_tolerance": CANDIDATE_TOLERANCE,
            "max_iterations": MAX_ITERATIONS,
            "library": "scikit-fuzzy",
        }

    def diagnostics(
        self,
        model: FuzzyCMeansModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        memberships = assignment.memberships
        top = memberships.max(axis=1)
        own = memberships[np.arange(len(X)), assignment.labels]
        return Diagnostics(
            metrics={
                "partition_coefficient": float((memberships**2).sum(axis=1).mean()),
                "partition_entropy": float(membership_entropy(memberships).mean()),
                "max_membership_mean": float(top.mean()),
                "max_membership_median": float(np.median(top)),
                "max_membership_min": float(top.min()),
                "ambiguous_share": float((top < AMBIGUOUS_BELOW).mean()),
                "n_iter": model.iterations,
            },
            cluster_extras=per_cluster(own, assignment.labels, model.n_clusters, "membership_stats"),
        )

"""Whether a data set is large enough for a clustering method, decided before any model is fitted.

A method the data cannot support is skipped with the reason (in its metadata, the comparison and the
report) while the other methods run, instead of failing mid-run after the cheaper methods are done.
The rules mirror what the driver needs: silhouette (for choosing and scoring k) needs at least k + 1
customers in its sample, and HDBSCAN (which never returns one all-encompassing cluster) needs two
clusters of at least min_cluster_size in its fitted sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from segmentation_pipeline.clustering.base import ClusteringSettings
from segmentation_pipeline.clustering.hdbscan import (
    HDBSCANMethod,
    effective_min_cluster_size,
)
from segmentation_pipeline.clustering.runner import METHODS


def method_support(n_customers: int, settings: ClusteringSettings, method: str) -> str | None:
    """Why `n_customers` customers cannot support `method` with these settings, or None if they can."""
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r} (known: {', '.join(METHODS)})")
    settings = settings.for_method(method)
    if method == HDBSCANMethod.name:
        fitted = min(n_customers, settings.hdbscan_sample_size)
        smallest = effective_min_cluster_size(settings, fitted)
        if fitted < 2 * smallest:
            return (
                f"hdbscan needs at least {2 * smallest} customers (two clusters of min_cluster_size {smallest}); "
                f"{_available(fitted, n_customers, 'hdbscan_sample_size')}"
            )
        return None
    scored = min(n_customers, settings.silhouette_sample_size)  # silhouette needs k <= customers - 1
    if settings.k != "auto" and settings.k > scored - 1:
        needed = f"{method} with k={settings.k} needs at least {settings.k + 1} customers"
    elif settings.k == "auto" and settings.k_min > scored - 1:
        needed = f"{method} tries k from k_min={settings.k_min}, which needs at least {settings.k_min + 1} customers"
    else:
        return None
    return f"{needed}; {_available(scored, n_customers, 'silhouette_sample_size')}"


def _available(used: int, n_customers: int, sample_key: str) -> str:
    if used < n_customers:
        return f"{sample_key} limits it to {used} of the {n_customers} customers"
    return f"the data has {n_customers}"


@dataclass(frozen=True)
class SkippedMethod:
    """A method that did not run, and why: not enabled in `clustering.methods`, or the data cannot
    support it. Its downstream steps pass it on, so the comparison and the report can say so."""

    method: str
    reason: str


def skip_reason(method: str, enabled: tuple[str, ...], n_customers: int, settings: ClusteringSettings) -> str | None:
    """Why `method` does not run in this run, or None when it does."""
    if method not in enabled:
        return f"not enabled in clustering.methods ({', '.join(enabled)})"
    return method_support(n_customers, settings, method)

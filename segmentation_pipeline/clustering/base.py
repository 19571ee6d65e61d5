"""The contract every clustering method implements, its settings and the result it produces.

A method is a small `ClusteringMethod` subclass: `fit(X, k, settings, seed)` returns a `ClusterModel`
whose `assign(X)` gives labels, soft memberships (where the method has them) and a per-customer
confidence. Everything else (feature preparation, choosing k, relabelling, metrics, bootstrap
stability, the model bundle) is shared code in the sibling modules, so a method module only says
what is specific to its algorithm.
"""

from __future__ import annotations

import numbers
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from segmentation_pipeline.clustering.preparation import FEATURE_SETS
from segmentation_pipeline.errors import InputDataError

if TYPE_CHECKING:
    from segmentation_pipeline.clustering.bundle import ModelBundle
    from segmentation_pipeline.clustering.metrics import SilhouetteScorer

METHOD_NAMES = ("kmeans", "gmm", "fuzzy_cmeans", "autoencoder_kmeans", "hdbscan")
DEFAULT_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_months",
    "return_rate",
)
# Counts and money are right-skewed (a few customers buy 100x the median); log1p makes their
# scale comparable to the other features before standard scaling.
DEFAULT_LOG1P_FEATURES = ("frequency", "monetary", "avg_order_value")
NOISE_HANDLING = ("nearest", "keep")
ASSIGN_CHUNK_ROWS = 200_000  # customers assigned at a time
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@dataclass(frozen=True)
class ClusteringSettings:
    """Settings shared by all methods; `overrides[method]` replaces any of them for one method.

    The defaults suit a few hundred to 50,000+ customers: the sample sizes cap the expensive steps,
    so all five methods on 50,000 customers take seconds, not minutes.

    features / log1p_features: behaviour columns clustered, and those log1p-transformed before
        scaling (log1p columns absent from `features` are ignored).
    feature_sets: the feature sets `run_feature_sets` fits, each a separate result: "behaviour"
        (`features` only) and "behaviour_mix" (`features` plus the purchase mix; see
        `preparation`). `run_method` fits the first unless told otherwise.
    mix_prefix: the spend columns whose mix is the purchase side ("dept_value:" = departments);
        without such columns "behaviour_mix" is not available and is skipped with a reason.
    mix_components: PCA components kept of the square-rooted spend shares.
    mix_weight: total variance of the mix block relative to the behaviour block (1 = equal say).
    standardize: standard-scale the (log1p-ed) features; False for features already encoded on a
        deliberate common scale (one-hot categories, ordinal positions in [0, 1]).
    k: "auto" (choose within k_min..k_max on the selection sample) or a fixed integer, which must
        lie within k_min..k_max so that a typo in the bounds or in k cannot pass unnoticed.
    seed: drives every random choice (samples, initialisations, bootstraps); same data + seed ->
        same labels and metrics.
    selection_sample_size: customers the candidate models are fitted on when choosing k.
    fit_sample_size: customers the final model and the feature preparation (scaling, purchase-mix
        PCA) are fitted on (everyone up to this many); every customer is then prepared and
        assigned, in chunks. Fitting cost stays flat as the customer base grows,
        the quality metrics are measured on the same sample, and the bootstraps always judge a
        model fitted on the same number of customers, so stability reads alike at any scale.
    silhouette_sample_size: the fixed random sample (derived from seed and n only, so identical for
        every method) on which silhouette is computed, for choosing k and as a metric.
    bootstraps / bootstrap_sample_size: refits on resamples (with replacement, capped) whose
        agreement with the full fit gives stability_ari_mean / stability_ari_min.
    kmeans_n_init: k-means restarts (kmeans and the k-means step of autoencoder_kmeans).
    gmm_covariance_type / gmm_n_init: GaussianMixture covariance_type and initialisations.
        "spherical" with 3 initialisations: on the embedded data and the Online Retail sample,
        "full" covariances (105 parameters per component on 14 behaviour + mix columns) let BIC
        pick a different k on every resample (bootstrap ARI 0.58-0.78); spherical components
        keep ARI >= 0.90 and the best of 3 starts removes unlucky initialisations.
    gmm_reg_covar: variance added to the covariance diagonals. The features are standardised, so
        1e-3 is a floor of ~3 % of a feature's spread in standard deviation: it stops components
        from collapsing onto the discrete values of integer features (frequency 1, 2, 3, ...),
        which scikit-learn's 1e-6 allows and BIC then rewards with spurious extra components.
    fuzziness: the fuzzy c-means exponent m (> 1; 2 is the customary choice).
    autoencoder_hidden / autoencoder_bottleneck: widths of the encoder layer and the bottleneck
        (the decoder mirrors the encoder); autoencoder_epochs caps training epochs (early stopping
        usually ends sooner); autoencoder_sample_size: customers the network is trained on (the
        6-16-4-16-6 network has ~450 weights, so 2,000 customers are plenty). A 4-wide bottleneck
        re-fits alike (bootstrap ARI 0.88-0.90 on the embedded data and Online Retail, 0.78-0.84
        with 3).
    hdbscan_sample_size: customers HDBSCAN is fitted on; everyone else takes the label of the
        nearest fitted customer.
    min_cluster_size: HDBSCAN smallest cluster; None = 1 % of the fitted customers (at least 10),
        so the same setting suits 500 and 50,000 customers.
    min_samples: HDBSCAN density smoothing; None = min_cluster_size (scikit-learn's default), which
        smooths over ~100 neighbours and marks more customers as noise; 10 keeps density local.
    assign_noise: "nearest" gives every HDBSCAN noise customer the label of its nearest clustered
        neighbour (every customer gets a segment); "keep" leaves them at -1 for analysis (profiles
        need every customer in a cluster, so the pipeline uses "nearest").
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    log1p_features: tuple[str, ...] = DEFAULT_LOG1P_FEATURES
    feature_sets: tuple[str, ...] = FEATURE_SETS
    mix_prefix: str = "dept_value:"
    mix_components: int = 8
    mix_weight: float = 1.0
    standardize: bool = True
    k: int | str = "auto"
    k_min: int = 2
    k_max: int = 10
    seed: int = 42
    selection_sample_size: int = 20_000
    fit_sample_size: int = 50_000
    silhouette_sample_size: int = 4_000
    bootstraps: int = 10
    bootstrap_sample_size: int = 5_000
    kmeans_n_init: int = 3
    gmm_covariance_type: str = "spherical"
    gmm_reg_covar: float = 1e-3
    gmm_n_init: int = 3
    fuzziness: float = 2.0
    autoencoder_hidden: int = 16
    autoencoder_bottleneck: int = 4
    autoencoder_epochs: int = 40
    autoencoder_sample_size: int = 2_000
    hdbscan_sample_size: int = 10_000
    min_cluster_size: int | None = None
    min_samples: int | None = 10
    assign_noise: str = "nearest"
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.k, numbers.Integral) and not isinstance(self.k, bool):
            object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "log1p_features", tuple(self.log1p_features))
        object.__setattr__(self, "feature_sets", tuple(self.feature_sets))
        problems = self._problems()
        if problems:
            raise ValueError("invalid clustering settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems = [
            f"{name} {problem}, got {getattr(self, name)!r}"
            for name in SETTING_NAMES
            if (problem := setting_problem(name, getattr(self, name)))
        ]
        problems += [
            f"{name} {problem}, got {getattr(self, name)!r}"
            for name, problem in bounds_problems(self.k, self.k_min, self.k_max)
        ]
        for method, values in self.overrides.items():
            if method not in METHOD_NAMES:
                problems.append(f"overrides: unknown method {method!r} (known: {', '.join(METHOD_NAMES)})")
            unknown = set(values) - set(SETTING_NAMES)
            if unknown:
                problems.append(f"overrides.{method}: unknown settings {sorted(unknown)}")
        return problems

    def for_method(self, method: str) -> ClusteringSettings:
        """These settings with `overrides[method]` applied (validated again)."""
        return replace(self, **self.overrides.get(method, {}))


SETTING_NAMES = tuple(f.name for f in fields(ClusteringSettings) if f.name != "overrides")
_POSITIVE_COUNTS = (
    "selection_sample_size",
    "fit_sample_size",
    "silhouette_sample_size",
    "bootstrap_sample_size",
    "kmeans_n_init",
    "autoencoder_hidden",
    "autoencoder_bottleneck",
    "autoencoder_epochs",
    "autoencoder_sample_size",
    "hdbscan_sample_size",
    "mix_components",
    "gmm_n_init",
)


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with one setting's value on its own ('must be >= 1'), or None; the config names the key.

    Checks that involve several settings (k within k_min..k_max) are `bounds_problems`.
    """
    if name in ("features", "log1p_features"):
        names = list(value)
        if len(set(names)) != len(names) or (name == "features" and not names):
            return "must be a non-empty list of distinct names" if name == "features" else "must be distinct names"
    elif name == "feature_sets":
        names = list(value)
        if not names or len(set(names)) != len(names) or set(names) - set(FEATURE_SETS):
            return f"must be distinct names from {', '.join(FEATURE_SETS)}"
    elif name == "mix_prefix" and not value:
        return "must not be empty"
    elif name == "mix_weight" and value <= 0:
        return "must be > 0"
    elif name in _POSITIVE_COUNTS and value < 1:
        return "must be >= 1"
    elif name == "bootstraps" and value < 0:
        return "must be >= 0"
    elif name == "gmm_covariance_type" and value not in COVARIANCE_TYPES:
        return f"must be one of {', '.join(COVARIANCE_TYPES)}"
    elif name == "gmm_reg_covar" and value < 0:
        return "must be >= 0"
    elif name == "fuzziness" and value <= 1:
        return "must be > 1"
    elif name == "min_cluster_size" and value is not None and value < 2:
        return "must be null (automatic) or at least 2"
    elif name == "min_samples" and value is not None and value < 1:
        return "must be null (= min_cluster_size) or at least 1"
    elif name == "assign_noise" and value not in NOISE_HANDLING:
        return f"must be one of {', '.join(NOISE_HANDLING)}"
    elif name == "k" and value != "auto" and type(value) is not int:
        return "must be 'auto' or an integer"
    elif name == "k_min" and value < 2:
        return "must be >= 2"
    return None


def bounds_problems(k: int | str, k_min: int, k_max: int) -> list[tuple[str, str]]:
    """(key, problem) for k_min <= k_max and a fixed k within them."""
    if k_min > k_max:
        return [("k_max", f"must be at least k_min={k_min} (need 2 <= k_min <= k_max)")]
    if type(k) is int and not k_min <= k <= k_max:
        return [("k", f"must be 'auto' or an integer in {k_min}..{k_max}")]
    return []


class UnsupportedDataError(InputDataError):
    """The data cannot support a method (e.g. HDBSCAN finds no dense cluster): the method is skipped
    with this reason while the other methods run."""


@dataclass(frozen=True)
class Assignment:
    """What a model says about a set of customers, in its own cluster ids."""

    labels: np.ndarray  # (n,) int, -1 only for HDBSCAN noise kept as noise
    memberships: np.ndarray | None  # (n, n_clusters), rows sum to 1, or None for hard methods
    confidence: np.ndarray  # (n,) in [0, 1]; what it means is documented per method
    noise: np.ndarray | None = None  # (n,) bool for density methods: customers in no dense region


class ClusterModel(ABC):
    """A fitted model that can assign any prepared feature matrix; pickled into the model bundle."""

    n_clusters: int

    @abstractmethod
    def assign(self, X: np.ndarray) -> Assignment: ...

    def assign_in_chunks(self, X: np.ndarray, chunk_rows: int = ASSIGN_CHUNK_ROWS) -> Assignment:
        """`assign` over consecutive chunks of X: the methods' temporaries (distance and membership
        matrices, network activations) stay the size of one chunk however many customers there are.
        Assigning millions of customers is large matrix products and distance reductions, so BLAS
        and OpenMP may use every core here (fits run single-threaded: see `runner.run_method`)."""
        with threadpool_limits(limits=os.cpu_count() or 1):
            if len(X) <= chunk_rows:
                return self.assign(X)
            parts = [self.assign(X[start : start + chunk_rows]) for start in range(0, len(X), chunk_rows)]
        memberships = None if parts[0].memberships is None else np.concatenate([p.memberships for p in parts])
        noise = None if parts[0].noise is None else np.concatenate([p.noise for p in parts])
        return Assignment(
            np.concatenate([p.labels for p in parts]), memberships, np.concatenate([p.confidence for p in parts]), noise
        )


@dataclass
class Diagnostics:
    """Method-specific output: extra metrics, per-cluster extras (by final label) and root extras."""

    metrics: dict[str, Any] = field(default_factory=dict)
    cluster_extras: dict[int, dict] = field(default_factory=dict)
    root_extras: dict[str, Any] = field(default_factory=dict)


class ClusteringMethod(ABC):
    """One clustering algorithm. Subclasses set `name` and implement `fit`; the rest is optional."""

    name: ClassVar[str]
    chooses_k: ClassVar[bool] = True  # False: the algorithm finds the number of clusters itself
    criterion: ClassVar[str] = "silhouette"

    @abstractmethod
    def fit(self, X: np.ndarray, k: int | None, settings: ClusteringSettings, seed: int) -> ClusterModel:
        """Fit on the prepared matrix X (k is None for methods that do not choose k)."""

    def candidates(
        self, X: np.ndarray, ks: Sequence[int], settings: ClusteringSettings
    ) -> Iterator[ClusterModel]:
        """One model per candidate k, fitted on the selection sample X."""
        for k in ks:
            yield self.fit(X, k, settings, settings.seed)

    def selection_score(
        self, model: ClusterModel, X: np.ndarray, silhouette: SilhouetteScorer
    ) -> float | None:
        """Score of a candidate (higher is better unless `choose` says otherwise)."""
        return silhouette.score_model(model)

    def choose(self, ks: Sequence[int], scores: Sequence[float | None]) -> tuple[int, str]:
        """(chosen k, rule name): the best silhouette, the smallest k on ties."""
        values = np.array([-np.inf if score is None else score for score in scores])
        return int(ks[int(np.argmax(values))]), "max"

    def parameters(self, model: ClusterModel, settings: ClusteringSettings) -> dict[str, Any]:
        """Method parameters recorded in the result (beyond the shared ones)."""
        return {}

    def diagnostics(
        self,
        model: ClusterModel,
        X: np.ndarray,
        assignment: Assignment,
        order: np.ndarray,
        features: Sequence[str],
    ) -> Diagnostics:
        """Method metrics and extras. `assignment` is in final labels; `order[label]` is the
        model's own id of that cluster (to index model attributes such as GMM weights)."""
        return Diagnostics()


@dataclass
class ClusteringResult:
    method: str  # "kmeans" | "gmm" | "fuzzy_cmeans" | "autoencoder_kmeans" | "hdbscan"
    customer_ids: np.ndarray  # aligned with labels
    labels: np.ndarray  # int 0..k-1 (HDBSCAN with assign_noise="keep": -1 for noise)
    memberships: np.ndarray | None  # (n, k) soft memberships / probabilities, rows sum to 1
    n_clusters: int
    features_used: list[str]
    params: dict  # k, k_source ("auto" | "fixed" | "density"), seed, preparation, method params
    metrics: dict  # silhouette, davies_bouldin, calinski_harabasz, stability_ari_mean/min,
    # fit_seconds + method-specific metrics
    selection_curve: dict | None  # {"criterion", "k": [...], "score": [...], "chosen_k", "rule"}
    cluster_extras: dict[int, dict]  # per final label: method extras for the profile
    root_extras: dict  # method extras at the profile root
    prepared: np.ndarray  # the scaled feature matrix the model saw
    bundle: ModelBundle  # persisted; predict() on new customers
    # Warnings raised while fitting (scikit-learn convergence, numpy overflow, ...): "Category: message"
    # -> occurrences, most frequent first. Kept here for the run's metadata instead of flooding stderr.
    warnings: dict[str, int] = field(default_factory=dict)
    feature_set: str = "behaviour"  # "behaviour" | "behaviour_mix"
    noise: np.ndarray | None = None  # (n,) bool for density methods: customers in no dense region

    @property
    def run_label(self) -> str:
        """"method/feature_set", the name of this run in comparisons."""
        return f"{self.method}/{self.feature_set}"


def distance_margin(distances: np.ndarray) -> np.ndarray:
    """Confidence of a nearest-centre assignment: 1 - d_nearest / d_second (0 on a boundary,
    1 on the centre). Needs at least two centres."""
    nearest_two = np.partition(distances, 1, axis=1)[:, :2]
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = 1.0 - nearest_two[:, 0] / nearest_two[:, 1]
    return np.nan_to_num(margin, nan=0.0)

"""The `persona_texts:` section of pipeline.yml: where the personas come from and how they are analysed.

Every key has a default that runs with no file (the embedded corpus, TF-IDF + LSA, k-means with k
chosen by silhouette, PCA map), so the section can be left out entirely.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSettings(_Section):
    """tfidf: TF-IDF + LSA fitted on the corpus itself (always available, nothing to download).
    model2vec: a model2vec static model read from the local folder `model_path` (never downloaded).
    lsa_components: LSA dimensions (capped by the corpus size and vocabulary).
    """

    backend: Literal["tfidf", "model2vec"] = "tfidf"
    model_path: str | None = None
    lsa_components: int = Field(100, ge=2)

    @model_validator(mode="after")
    def _model2vec_needs_folder(self) -> EmbeddingSettings:
        if self.backend == "model2vec" and not self.model_path:
            raise ValueError("persona_texts.embedding.model_path is required when backend is `model2vec`")
        return self


class OutlierSettings(_Section):
    """Density methods leave personas in no cluster (noise). `keep` reports them as cluster -1;
    `nearest` moves a noise persona into the cluster whose centroid it is most similar to, when that
    cosine similarity is at least `min_similarity` (the rest stay noise). The noise share before and
    after is always reported."""

    policy: Literal["keep", "nearest"] = "keep"
    min_similarity: float = Field(0.3, ge=-1.0, le=1.0)


class CsvColumns(_Section):
    """The id and text columns of a CSV source."""

    id: str = "id"
    text: str = "text"


class PersonaTextsSettings(_Section):
    """source: `embedded` (the shipped generated corpus, with known families) or `file` (`path`: a
    `=== PERSONA N ===` text file, or a .csv with `csv_columns`).
    embedded_count: personas generated for the embedded corpus.
    include_pipeline_personas: add the personas the retail / leads flows produced to the corpus.
    method / k / k_min / k_max: k-means with k chosen by silhouette (`auto`) or fixed; DBSCAN (eps
    from the k-distance knee) or HDBSCAN; min_cluster_size: HDBSCAN's smallest cluster and DBSCAN's
    min_samples.
    visualization: the 2-D projection of the interactive map.
    seed: every random choice; same inputs and seed give byte-identical outputs.
    redundancy_threshold: cosine similarity above which two personas are listed as redundant.
    stability_seeds: re-clusterings with other seeds whose agreement (ARI) is the stability.
    top_terms: distinctive terms kept per cluster.
    llm_labels: ask the optional LLM client (the `llm:` section) for cluster labels.
    """

    source: Literal["embedded", "file"] = "embedded"
    path: str | None = None
    csv_columns: CsvColumns = CsvColumns()
    embedded_count: int = Field(180, ge=10)
    include_pipeline_personas: bool = False
    embedding: EmbeddingSettings = EmbeddingSettings()
    method: Literal["kmeans", "dbscan", "hdbscan"] = "kmeans"
    k: int | Literal["auto"] = "auto"
    k_min: int = Field(2, ge=2)
    k_max: int = Field(20, ge=2)
    min_cluster_size: int = Field(10, ge=2)
    outliers: OutlierSettings = OutlierSettings()
    visualization: Literal["pca", "tsne"] = "pca"
    seed: int = 42
    redundancy_threshold: float = Field(0.9, gt=0.0, le=1.0)
    stability_seeds: int = Field(5, ge=0)
    top_terms: int = Field(10, ge=1)
    llm_labels: bool = False

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, value: int | str) -> int | str:
        if value != "auto" and value < 2:
            raise ValueError("persona_texts.k must be `auto` or an integer >= 2")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PersonaTextsSettings:
        if self.source == "file" and not self.path:
            raise ValueError("persona_texts.path is required when source is `file`")
        if self.k_min > self.k_max:
            raise ValueError(f"persona_texts: need k_min <= k_max, got {self.k_min} > {self.k_max}")
        return self

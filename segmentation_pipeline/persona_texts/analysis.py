"""The persona-texts steps in pipeline order, and the whole analysis in one call.

Order (one Dagster asset each, or `analyse_corpus` for all): load_corpus -> fit_embedder + encode ->
cluster_personas -> extract_themes -> classify_personas -> seed_stability + clustering_quality ->
dissimilarity_matrix, redundant_pairs -> clusters_table -> project_2d + cluster_map_html ->
SimilarityIndex. `write_outputs` writes every file to the paths the caller gives, or under a folder at
their `layout` paths (the file names are decided there, once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.persona_texts.classification import (
    classification_agreement,
    classify_personas,
    load_dimensions,
)
from segmentation_pipeline.persona_texts.clusters import (
    PersonaClusters,
    cluster_personas,
    seed_stability,
)
from segmentation_pipeline.persona_texts.corpus import (
    PersonaCorpus,
    combine_corpora,
    read_persona_csv,
    read_persona_file,
)
from segmentation_pipeline.persona_texts.embedding import Embedder, fit_embedder
from segmentation_pipeline.persona_texts.generator import generate_personas
from segmentation_pipeline.persona_texts.outputs import (
    clusters_table,
    csv_bytes,
    json_bytes,
    write_dissimilarity_csv,
)
from segmentation_pipeline.persona_texts.pipeline_personas import (
    pipeline_persona_corpus,
)
from segmentation_pipeline.persona_texts.quality import clustering_quality
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline.persona_texts.similarity import (
    SimilarityIndex,
    dissimilarity_matrix,
    redundant_pairs,
    save_similarity_index,
)
from segmentation_pipeline.persona_texts.themes import extract_themes
from segmentation_pipeline.persona_texts.visualization import (
    cluster_map_html,
    project_2d,
)
from segmentation_pipeline.storage import atomic_write_bytes, atomic_write_text


@dataclass(frozen=True)
class LoadedCorpus:
    corpus: PersonaCorpus
    truth: pd.DataFrame | None  # ground truth per persona (embedded corpus only), aligned by persona_id


def load_corpus(
    settings: PersonaTextsSettings,
    root: Path | None = None,
    pipeline_personas: Mapping[str, Mapping] | None = None,
) -> LoadedCorpus:
    """The configured corpus (a relative `path` is relative to `root`), plus the pipeline's own
    personas when `include_pipeline_personas` is on (`pipeline_personas`: flow name -> personas dict)."""
    truth = None
    if settings.source == "embedded":
        generated = generate_personas(settings.embedded_count, settings.seed)
        corpus, truth = generated.corpus, generated.truth
    else:
        path = Path(settings.path)
        path = path if path.is_absolute() or root is None else Path(root) / path
        if path.suffix.lower() in (".csv", ".tsv", ".xlsx", ".parquet"):
            corpus = read_persona_csv(path, settings.csv_columns.id, settings.csv_columns.text)
        else:
            corpus = read_persona_file(path)
    if settings.include_pipeline_personas and pipeline_personas:
        corpus = combine_corpora([corpus, pipeline_persona_corpus(pipeline_personas)])
        truth = None if truth is None else corpus.personas[["persona_id"]].merge(truth, on="persona_id", how="left")
    return LoadedCorpus(corpus, truth)


@dataclass
class PersonaTextsAnalysis:
    corpus: PersonaCorpus
    embedder: Embedder
    vectors: np.ndarray
    clusters: PersonaClusters
    themes: dict
    classified: pd.DataFrame
    table: pd.DataFrame  # the clusters table
    quality: dict
    redundant: pd.DataFrame
    dissimilarity: np.ndarray
    html: str
    summary: dict  # metadata: corpus report, embedding, method parameters, noise, quality, timings
    timings: dict = field(default_factory=dict)
    coordinates: np.ndarray | None = None  # the map's 2-D projection, one row per persona

    def similarity_index(self) -> SimilarityIndex:
        return SimilarityIndex(
            self.embedder, self.vectors, self.table["persona_id"].tolist(), self.corpus.texts,
            self.table["cluster_label"].tolist(), {"embedding": self.embedder.describe()},
        )


def analyse_corpus(
    loaded: LoadedCorpus,
    settings: PersonaTextsSettings,
    root: Path | None = None,
    ask: Callable[[str], str] | None = None,
) -> PersonaTextsAnalysis:
    """Every step on one corpus; `ask` is the optional LLM for labels (used when settings.llm_labels)."""
    corpus, timings = loaded.corpus, {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    texts = corpus.texts
    embedder = fit_embedder(texts, settings.embedding, settings.seed, root)
    vectors = embedder.encode(texts)
    lap("embed")
    clusters = cluster_personas(vectors, settings)
    lap("cluster")
    themes = extract_themes(texts, corpus.personas["persona_id"].tolist(), clusters.labels, vectors,
                            settings.top_terms, ask if settings.llm_labels else None)
    lap("themes")
    dimensions = load_dimensions()
    classified = classify_personas(texts, vectors, embedder, dimensions)
    lap("classify")
    families = corpus.personas["family"].tolist()
    quality = clustering_quality(vectors, clusters.labels, texts, themes, seed_stability(vectors, clusters, settings),
                                 families, settings.seed)
    if loaded.truth is not None:
        quality["classification_accuracy"] = classification_agreement(classified, loaded.truth)
    lap("quality")
    dissimilarity = dissimilarity_matrix(vectors)
    redundant = redundant_pairs(vectors, corpus.personas, settings.redundancy_threshold)
    lap("matrix")
    table = clusters_table(corpus, clusters, themes, classified)
    summary = {
        "personas": len(corpus.personas),
        "sections": corpus.sections,
        "rejected": corpus.rejected.to_dict(orient="records"),
        "duplicates": corpus.duplicate_count(),
        "embedding": embedder.describe(),
        "clustering": clusters.params,
        "clusters": clusters.n_clusters,
        "noise": clusters.noise,
        "selection_curve": clusters.selection_curve,
        "k_distance": clusters.k_distance,
        "redundant_pairs": len(redundant),
        "redundancy_threshold": settings.redundancy_threshold,
        "visualization": settings.visualization,
        "seed": settings.seed,
        "quality": quality,
    }
    coordinates = project_2d(vectors, settings.visualization, settings.seed)
    shown = {key: summary[key] for key in ("personas", "clusters", "duplicates", "redundant_pairs", "visualization")}
    shown |= {"embedding": summary["embedding"]["model"], "method": clusters.params["method"],
              "noise share": clusters.noise["noise_share"], "silhouette": quality["silhouette"]}
    if quality["truth"]:
        shown["ARI vs known families"] = quality["truth"]["ari"]
    html = cluster_map_html(table, texts, coordinates, list(dimensions), "Persona map", shown,
                            clusters.selection_curve, clusters.k_distance)
    lap("html")
    return PersonaTextsAnalysis(corpus, embedder, vectors, clusters, themes, classified, table, quality,
                                redundant, dissimilarity, html, summary, timings, coordinates)


def write_outputs(analysis: PersonaTextsAnalysis, target: str | Path | Mapping[str, str | Path]) -> dict[str, Path]:
    """Every output file, each written atomically: to `target[name]` for each output name of
    `layout.PERSONA_TEXTS_OUTPUTS`, or, when `target` is a folder, under it at the layout paths
    (`<folder>/persona_texts/clusters.csv`, ...). Returns output name -> path written."""
    if isinstance(target, Mapping):
        paths = {name: Path(target[name]) for name in layout.PERSONA_TEXTS_OUTPUTS}
    else:
        paths = {name: Path(target) / relative for name, relative in layout.PERSONA_TEXTS_OUTPUTS.items()}
    return {
        "clusters": atomic_write_bytes(paths["clusters"], csv_bytes(analysis.table)),
        "dissimilarity": write_dissimilarity_csv(analysis.dissimilarity, paths["dissimilarity"]),
        "themes": atomic_write_bytes(paths["themes"], json_bytes(analysis.themes)),
        "redundant_pairs": atomic_write_bytes(paths["redundant_pairs"], csv_bytes(analysis.redundant)),
        "html": atomic_write_text(paths["html"], analysis.html),
        "summary": atomic_write_bytes(paths["summary"], json_bytes(analysis.summary)),
        "index": save_similarity_index(analysis.similarity_index(), paths["index"]),
    }

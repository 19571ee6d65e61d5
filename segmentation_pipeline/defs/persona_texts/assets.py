"""Persona-texts assets: the corpus, then the whole analysis in one step (its parts share the
embedding and the clustering, and together take about a second on the default corpus)."""

import json
import os

import dagster as dg
import pandas as pd

from segmentation_pipeline import charts, layout
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.orchestration.conventions import (
    OWNERS,
    REFRESH_WHEN_UPSTREAM_CHANGES,
)
from segmentation_pipeline.orchestration.metadata import numeric_metadata
from segmentation_pipeline.orchestration.resources import (
    LLMNarrator,
    PipelineSettings,
    record_outputs,
)
from segmentation_pipeline.persona_texts.analysis import (
    LoadedCorpus,
    PersonaTextsAnalysis,
    analyse_corpus,
    load_corpus,
    write_outputs,
)
from segmentation_pipeline.persona_texts.outputs import csv_bytes
from segmentation_pipeline.persona_texts.themes import narrative_asker
from segmentation_pipeline.persona_texts.visualization import (
    map_preview_png,
    tuning_preview_png,
)
from segmentation_pipeline.storage import atomic_write_bytes

GROUP = "persona_texts"
CHART_PREFIX = "persona_texts"
RETAIL_PERSONAS = [f"{method}_personas" for method in METHODS]
# The flows whose personas can join the corpus (ids "<flow>:<cluster_id>"), and their files.
PIPELINE_PERSONAS = {f"retail/{method}": layout.personas_json(method) for method in METHODS} | {
    "leads": layout.LEADS_PERSONAS
}


def _pipeline_personas(settings: PipelineSettings, run_id: str) -> dict[str, dict]:
    """Every flow's personas JSON, this run's or else the published one; a method that was skipped
    has none and is left out."""
    folder = settings.output_folder()
    found = {flow: folder.locate(relative, run_id) for flow, relative in PIPELINE_PERSONAS.items()}
    return {flow: json.loads(path.read_text()) for flow, path in found.items() if path is not None}


@dg.asset(
    name="persona_text_corpus",
    group_name=GROUP,
    io_manager_key="object_io_manager",
    kinds={"python", "csv"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    deps=[*RETAIL_PERSONAS, "lead_personas"],
    description=(
        "The persona collection to analyse (`persona_texts:` in the config): the embedded generated corpus "
        "(with known families) or a `=== PERSONA N ===` text file / CSV. Empty sections are rejected with "
        "their line and reason, duplicates kept and flagged (`duplicate_of`); both reported in the metadata. "
        "The graph always depends on every `<method>_personas` asset and on `lead_personas` so it stays the "
        "same whatever the config says; their personas are read and added to the corpus only when "
        "`persona_texts.include_pipeline_personas` is true (otherwise they are ignored). "
        f"File: `{layout.PERSONA_TEXTS_CORPUS}`."
    ),
)
def persona_text_corpus(context: dg.AssetExecutionContext, settings: PipelineSettings) -> LoadedCorpus:
    section = settings.config.persona_texts_settings()
    pipeline = _pipeline_personas(settings, context.run.run_id) if section.include_pipeline_personas else None
    loaded = load_corpus(section, pipeline_personas=pipeline)
    corpus = loaded.corpus
    atomic_write_bytes(settings.staging(context.run.run_id).path(layout.PERSONA_TEXTS_CORPUS), csv_bytes(corpus.personas))
    duplicates = corpus.personas.loc[corpus.personas["duplicate_of"].notna(), ["persona_id", "duplicate_of"]]
    record_outputs(
        context,
        settings,
        [layout.PERSONA_TEXTS_CORPUS],
        corpus.personas,
        unit="personas",
        source=section.source if section.source == "embedded" else str(section.path),
        sections=corpus.sections,
        rejected_sections=len(corpus.rejected),
        duplicates=len(duplicates),
        pipeline_personas=dg.MetadataValue.json(
            {flow: len(doc.get("personas", [])) for flow, doc in pipeline.items()} if pipeline else "not included"
        ),
        rejected=dg.MetadataValue.md(_markdown(corpus.rejected, "no section rejected")),
        duplicate_personas=dg.MetadataValue.md(_markdown(duplicates, "no duplicate text")),
    )
    return loaded


@dg.asset(
    name="persona_text_analysis",
    group_name=GROUP,
    kinds={"scikitlearn", "plotly", "csv"},
    owners=OWNERS,
    automation_condition=REFRESH_WHEN_UPSTREAM_CHANGES,
    ins={"loaded": dg.AssetIn("persona_text_corpus")},
    description=(
        "Every persona embedded (TF-IDF + LSA, or a local model2vec model; recorded in the metadata), "
        "clustered (k-means with k by silhouette, DBSCAN with eps from the k-distance knee, or HDBSCAN; noise "
        "per the outlier policy), each cluster's distinctive terms and unique label, each persona classified "
        "along seniority / industry / expertise / priorities / challenges, quality (silhouette, Davies-Bouldin, "
        "Calinski-Harabasz, topic diversity, NPMI coherence, stability across seeds, ARI vs known families) as "
        "`metric/*`, the 1 - cosine dissimilarity matrix, redundant pairs above the threshold, the "
        "self-contained interactive map and the similarity index that `segmentation-pipeline similar` queries. "
        "Same inputs and seed give byte-identical CSV, JSON and HTML. Files: "
        + ", ".join(f"`{path}`" for path in layout.PERSONA_TEXTS_OUTPUTS.values())
        + f"; map and tuning-curve previews `{layout.chart(CHART_PREFIX, '*')}`."
    ),
)
def persona_text_analysis(
    context: dg.AssetExecutionContext, settings: PipelineSettings, llm: LLMNarrator, loaded: LoadedCorpus
) -> None:
    section = settings.config.persona_texts_settings()
    ask = None
    if section.llm_labels:
        if llm.enabled:
            ask = narrative_asker(llm.base_url, llm.model, os.environ.get(llm.api_key_env), llm.timeout_seconds, llm.temperature)
        else:
            context.log.warning("persona_texts.llm_labels is on but the llm: section is disabled: deterministic labels")
    analysis = analyse_corpus(loaded, section, ask=ask)
    staging = settings.staging(context.run.run_id)
    write_outputs(analysis, {name: staging.path(relative) for name, relative in layout.PERSONA_TEXTS_OUTPUTS.items()})
    pngs = {"map": map_preview_png(analysis.table, analysis.coordinates, analysis.summary["visualization"])}
    tuning = tuning_preview_png(analysis.clusters.selection_curve, analysis.clusters.k_distance)
    if tuning is not None:
        pngs["tuning"] = tuning
    previews = {name: layout.chart(CHART_PREFIX, name) for name in pngs}
    for name, png in pngs.items():
        charts.save_png(png, staging.path(previews[name]))
    embedding = analysis.summary["embedding"]
    record_outputs(
        context,
        settings,
        [*layout.PERSONA_TEXTS_OUTPUTS.values(), *previews.values()],
        analysis.table,
        unit="personas",
        **{
            "embedding/backend": embedding["backend"],
            "embedding/model": str(embedding["model"]),
            "embedding": dg.MetadataValue.json(embedding),
            "clustering": dg.MetadataValue.json(analysis.clusters.params),
            "n_clusters": analysis.clusters.n_clusters,
            "noise": dg.MetadataValue.json(analysis.clusters.noise),
            "themes": dg.MetadataValue.md(_themes_markdown(analysis.themes)),
            "quality": dg.MetadataValue.json(analysis.quality),
            "timings_seconds": dg.MetadataValue.json(analysis.timings),
            "map": dg.MetadataValue.path(str(settings.config.output_path() / layout.PERSONA_TEXTS_MAP)),
            **{f"chart/{name}": dg.MetadataValue.md(charts.markdown_image(png)) for name, png in pngs.items()},
            **numeric_metadata(_metrics(analysis)),
        },
    )


# --- metadata helpers --------------------------------------------------------------------------


def _markdown(table: pd.DataFrame, empty: str) -> str:
    return table.to_markdown(index=False) if len(table) else empty


def _themes_markdown(themes: dict) -> str:
    rows = [
        {"cluster": c["cluster_id"], "label": c["label"], "size": c["size"], "terms": ", ".join(t["term"] for t in c["terms"][:6])}
        for c in themes["clusters"]
    ]
    return _markdown(pd.DataFrame(rows), "no cluster")


def _metrics(analysis: PersonaTextsAnalysis) -> dict:
    """The quality figures flattened to numbers (None and nested details left out)."""
    quality = analysis.quality
    metrics = {name: quality.get(name) for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "topic_diversity")}
    metrics["coherence_npmi"] = (quality.get("coherence_npmi") or {}).get("mean")
    stability = quality.get("stability") or {}
    metrics["stability_ari_mean"] = stability.get("ari_mean")
    metrics["stability_ari_min"] = stability.get("ari_min")
    truth = quality.get("truth") or {}
    metrics["ari_vs_families"] = truth.get("ari")
    metrics["nmi_vs_families"] = truth.get("nmi")
    for dimension, accuracy in (quality.get("classification_accuracy") or {}).items():
        metrics[f"classification_accuracy_{dimension}"] = accuracy
    metrics["n_clusters"] = analysis.clusters.n_clusters
    metrics["noise_share"] = analysis.clusters.noise["noise_share"]
    metrics["redundant_pairs"] = len(analysis.redundant)
    metrics["personas"] = len(analysis.table)
    return {name: value for name, value in metrics.items() if value is not None}

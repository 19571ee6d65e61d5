"""Persona-texts asset checks: thin wrappers over the core's `*_problems` functions, reading the files
the run stored (else the published ones), so they also run on their own (`segmentation-pipeline check`).
Blocking checks stop publication when an invariant of the outputs breaks."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import layout
from segmentation_pipeline.comparison import STABILITY_THRESHOLD
from segmentation_pipeline.orchestration.metadata import check_result
from segmentation_pipeline.orchestration.resources import PipelineSettings, load_object
from segmentation_pipeline.persona_texts.checks import (
    assignment_problems,
    dissimilarity_problems,
    html_problems,
    label_problems,
    section_problems,
)
from segmentation_pipeline.persona_texts.outputs import read_dissimilarity_csv

CORPUS = "persona_text_corpus"
ANALYSIS = "persona_text_analysis"



@dg.asset_check(
    asset=CORPUS,
    name="no_section_silently_dropped",
    blocking=True,
    description="Sections read = personas + rejected sections, and every rejected section has a reason.",
)
def no_section_silently_dropped(context: dg.AssetCheckExecutionContext, settings: PipelineSettings) -> dg.AssetCheckResult:
    corpus = load_object(settings, CORPUS, context.run.run_id).corpus
    return check_result(
        "no_section_silently_dropped", CORPUS, section_problems(corpus),
        sections=corpus.sections, personas=len(corpus.personas), rejected=len(corpus.rejected),
    )


@dg.multi_asset_check(
    name="persona_text_analysis_checks",
    can_subset=True,
    specs=[
        dg.AssetCheckSpec(
            "dissimilarity_matrix_valid", asset=ANALYSIS, blocking=True,
            description="The dissimilarity matrix is square, symmetric, zero on the diagonal, within [0, 2] and "
            "indexed by persona index.",
        ),
        dg.AssetCheckSpec(
            "every_persona_in_one_cluster_or_noise", asset=ANALYSIS, blocking=True, additional_deps=[CORPUS],
            description="clusters.csv has every persona of the corpus exactly once, with a cluster 0..k-1 or -1 "
            "(noise), and the -1 rows match the noise reported in summary.json.",
        ),
        dg.AssetCheckSpec(
            "cluster_labels_unique", asset=ANALYSIS, blocking=True,
            description="Every cluster in themes.json has a non-empty label and no two share one.",
        ),
        dg.AssetCheckSpec(
            "map_self_contained", asset=ANALYSIS, blocking=True,
            description="clusters.html holds the map with plotly.js inlined and loads nothing from the network.",
        ),
        dg.AssetCheckSpec(
            "stable_across_seeds", asset=ANALYSIS, blocking=False,
            description=f"Warns when the mean ARI of the re-clusterings with other seeds is below {STABILITY_THRESHOLD}.",
        ),
    ],
)
def persona_text_analysis_checks(context: dg.AssetCheckExecutionContext, settings: PipelineSettings):
    run_id = context.run.run_id
    selected = {key.name for key in context.selected_asset_check_keys}

    def stored(relative: str):
        return settings.locate(relative, run_id)

    summary = json.loads(stored(layout.PERSONA_TEXTS_SUMMARY).read_text(encoding="utf-8"))
    if "dissimilarity_matrix_valid" in selected:
        matrix = read_dissimilarity_csv(stored(layout.PERSONA_TEXTS_DISSIMILARITY))
        yield check_result("dissimilarity_matrix_valid", ANALYSIS, dissimilarity_problems(matrix), shape=list(matrix.shape))
    if "every_persona_in_one_cluster_or_noise" in selected:
        corpus = load_object(settings, CORPUS, run_id).corpus
        table = pd.read_csv(stored(layout.PERSONA_TEXTS_CLUSTERS), usecols=["persona_index", "cluster_id"])
        noise = int(summary["noise"]["noise"])
        problems = assignment_problems(table, len(corpus.personas), noise)
        yield check_result("every_persona_in_one_cluster_or_noise", ANALYSIS, problems, personas=len(table), noise=noise)
    if "cluster_labels_unique" in selected:
        themes = json.loads(stored(layout.PERSONA_TEXTS_THEMES).read_text(encoding="utf-8"))
        yield check_result("cluster_labels_unique", ANALYSIS, label_problems(themes), clusters=len(themes["clusters"]))
    if "map_self_contained" in selected:
        html = stored(layout.PERSONA_TEXTS_MAP).read_text(encoding="utf-8")
        yield check_result("map_self_contained", ANALYSIS, html_problems(html), bytes=len(html.encode("utf-8")))
    if "stable_across_seeds" in selected:
        ari = (summary["quality"].get("stability") or {}).get("ari_mean")
        problems = [f"mean ARI across seeds {ari:.3f}"] if ari is not None and ari < STABILITY_THRESHOLD else []
        yield check_result(
            "stable_across_seeds", ANALYSIS, problems, severity=dg.AssetCheckSeverity.WARN,
            stability_ari_mean=float("nan") if ari is None else float(ari),
        )

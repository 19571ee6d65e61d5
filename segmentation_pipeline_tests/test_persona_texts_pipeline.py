"""The persona_texts domain in the running project: its assets materialized in-process, checked and
published, `segmentation-pipeline similar` answering from the published index, and the retail
personas joining the corpus when the config says so."""

import json

import dagster as dg
import pandas as pd

from segmentation_pipeline import cli, layout
from segmentation_pipeline.clustering import METHODS
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.publication import OutputFolder
from segmentation_pipeline_tests.conftest import materialize, write_config

ASSETS = ["persona_text_corpus", "persona_text_analysis"]
SMALL = {"embedded_count": 40, "k_max": 8, "stability_seeds": 2, "seed": 3}
CHECKS = {
    ("persona_text_corpus", "no_section_silently_dropped"),
    ("persona_text_analysis", "dissimilarity_matrix_valid"),
    ("persona_text_analysis", "every_persona_in_one_cluster_or_noise"),
    ("persona_text_analysis", "cluster_labels_unique"),
    ("persona_text_analysis", "map_self_contained"),
    ("persona_text_analysis", "stable_across_seeds"),
}


def test_assets_publish_their_files_pass_their_checks_and_answer_similar(tmp_path, capsys):
    config = write_config(tmp_path, persona_texts=SMALL)
    query = ["similar", "an account executive closing enterprise deals toward quota", "--top", "3", "--config", str(config)]
    assert cli.main(query) == 2  # nothing published yet: one clear line
    error = capsys.readouterr().err
    assert error.startswith("error: no persona texts published yet") and error.count("\n") == 1

    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, ASSETS)
    assert result.success
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == CHECKS
    blocking_failed = [name for name, e in evaluations.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert blocking_failed == []

    out = tmp_path / "outputs"
    published = OutputFolder(out).current()
    assert published.run_id == result.run_id
    files = {layout.PERSONA_TEXTS_CORPUS, *layout.PERSONA_TEXTS_OUTPUTS.values(), layout.chart("persona_texts", "map")}
    assert files <= set(published.manifest["files"])
    for relative in files:  # readable at the stable paths, i.e. through `current`
        assert (out / relative).is_file() and (out / relative).resolve() == published.file(relative).resolve(), relative
    assert published.manifest["assets"]["persona_text_analysis"]["row_count"] == 40
    clusters = pd.read_csv(out / layout.PERSONA_TEXTS_CLUSTERS)
    assert len(clusters) == 40 and clusters.columns[:4].tolist() == ["persona_index", "persona_id", "cluster_id", "cluster_label"]

    graph = build_definitions(config).resolve_asset_graph()
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "persona_texts" and node.description and node.owners and node.kinds, name
        metadata = instance.get_latest_materialization_event(dg.AssetKey(name)).asset_materialization.metadata
        assert metadata["dagster/row_count"].value == 40 and metadata["dagster/column_schema"].value.columns, name
    assert set(graph.get(dg.AssetKey("persona_text_corpus")).parent_keys) == {
        dg.AssetKey(name) for name in [*(f"{m}_personas" for m in METHODS), "lead_personas"]
    }
    metadata = instance.get_latest_materialization_event(dg.AssetKey("persona_text_analysis")).asset_materialization.metadata
    assert metadata["embedding/backend"].value == "tfidf" and metadata["embedding/model"].value == "tfidf+lsa"
    assert 0 < metadata["metric/silhouette"].value <= 1 and "metric/ari_vs_families" in metadata
    assert metadata["chart/map"].value.startswith("![](data:image/png;base64,")
    assert metadata["chart/tuning"].value.startswith("![](data:image/png;base64,")

    assert cli.main(query) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[0].startswith(" 1. ") and lines[2].startswith(" 2. ")


def test_outputs_are_byte_identical_for_a_seed(tmp_path):
    digests = []
    for attempt in ("first", "second"):
        config = write_config(tmp_path / attempt, persona_texts=SMALL)
        assert materialize(config, dg.DagsterInstance.ephemeral(), ASSETS).success
        manifest = OutputFolder(tmp_path / attempt / "outputs").current().manifest["files"]
        digests.append({rel: info["sha256"] for rel, info in manifest.items() if rel.endswith((".csv", ".json", ".html"))})
    assert len(digests[0]) >= 6 and digests[0] == digests[1]


def test_retail_personas_join_the_corpus_when_enabled(tmp_path):
    """The published retail personas (stand-ins written here, so the retail graph need not run) are
    read by `persona_text_corpus` only when `include_pipeline_personas` is on."""
    config = write_config(tmp_path, persona_texts={**SMALL, "include_pipeline_personas": True})
    folder = OutputFolder(tmp_path / "outputs")
    staging = folder.staging("retail-run")
    for method in METHODS:
        personas = {"personas": [
            {"cluster_id": c, "persona_name": f"{method} persona {c}", "description": f"Loyal {method} shoppers who buy often, cluster {c}."}
            for c in range(2)
        ]}
        relative = layout.personas_json(method)
        staging.path(relative).write_text(json.dumps(personas))
        staging.record(f"{method}_personas", [relative], 2)
    leads = {"personas": [{"cluster_id": 0, "persona_name": "Management in Banking [HIGH VALUE]",
                           "professional": {"industries": [{"name": "Banking"}]}}]}
    staging.path(layout.LEADS_PERSONAS).write_text(json.dumps(leads))
    staging.record("lead_personas", [layout.LEADS_PERSONAS], 1)
    folder.publish(["retail-run"])

    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, ASSETS)
    assert result.success
    corpus = pd.read_csv(tmp_path / "outputs" / layout.PERSONA_TEXTS_CORPUS)
    retail = corpus[corpus["persona_id"].str.startswith("retail/")]
    assert len(corpus) == 40 + 2 * len(METHODS) + 1 and len(retail) == 2 * len(METHODS)
    assert "retail/kmeans:0" in set(retail["persona_id"]) and "leads:0" in set(corpus["persona_id"])
    clusters = pd.read_csv(tmp_path / "outputs" / layout.PERSONA_TEXTS_CLUSTERS)
    assert len(clusters) == len(corpus)
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR)


def test_a_file_corpus_relative_to_the_config_reports_empty_and_duplicate_sections(tmp_path):
    sections = [f"=== PERSONA {n} ===\nA {role} who {task}.\n" for n, (role, task) in enumerate([
        ("nurse", "cares for patients"), ("analyst", "builds dashboards"), ("nurse", "cares for patients")], start=1)]
    (tmp_path / "personas.txt").write_text("".join(sections) + "=== PERSONA 4 ===\n\n", encoding="utf-8")
    config = write_config(tmp_path, persona_texts={"source": "file", "path": "personas.txt"})
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(config, instance, ["persona_text_corpus"])
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    metadata = instance.get_latest_materialization_event(dg.AssetKey("persona_text_corpus")).asset_materialization.metadata
    assert metadata["source"].value == str(tmp_path / "personas.txt")
    assert metadata["sections"].value == 4 and metadata["rejected_sections"].value == 1 and metadata["duplicates"].value == 1
    assert "empty_section" in metadata["rejected"].value and metadata["dagster/row_count"].value == 3

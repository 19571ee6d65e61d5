"""The persona-texts analysis end to end on the embedded corpus: clusters against the known families,
themes, classification, quality, redundancy, the outputs and their checks, byte-identical reruns."""

import json

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline import layout
from segmentation_pipeline.persona_texts.analysis import analyse_corpus, load_corpus, write_outputs
from segmentation_pipeline.persona_texts.checks import (
    assignment_problems,
    dissimilarity_problems,
    html_problems,
    label_problems,
    section_problems,
)
from segmentation_pipeline.persona_texts.clusters import apply_outlier_policy, cluster_personas, k_distance_knee
from segmentation_pipeline.persona_texts.outputs import read_dissimilarity_csv, write_dissimilarity_csv
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline.persona_texts.themes import NOISE_LABEL

DIMENSIONS = ["seniority", "industry", "expertise", "priorities", "challenges"]


@pytest.fixture(scope="module")
def default_run():
    settings = PersonaTextsSettings()
    loaded = load_corpus(settings)
    return loaded, analyse_corpus(loaded, settings)


def test_kmeans_recovers_the_known_families(default_run):
    loaded, analysis = default_run
    assert len(loaded.corpus.personas) == 180
    truth = analysis.quality["truth"]
    print(f"ARI vs known families: {truth['ari']:.3f} (NMI {truth['nmi']:.3f})")
    assert truth["ari"] >= 0.8 and truth["families"] == 10
    curve = analysis.clusters.selection_curve
    assert curve["criterion"] == "silhouette" and curve["k"] == list(range(2, 21)) and len(curve["score"]) == 19
    assert curve["chosen_k"] == analysis.clusters.n_clusters == 10
    assert analysis.summary["embedding"]["backend"] == "tfidf" and analysis.summary["embedding"]["model"] == "tfidf+lsa"


def test_quality_figures(default_run):
    _, analysis = default_run
    quality = analysis.quality
    assert 0 < quality["silhouette"] <= 1 and quality["davies_bouldin"] > 0 and quality["calinski_harabasz"] > 0
    assert 0.9 <= quality["topic_diversity"] <= 1
    assert 0 < quality["coherence_npmi"]["mean"] <= 1 and len(quality["coherence_npmi"]["per_cluster"]) == 10
    stability = quality["stability"]
    assert stability["seeds"] == [43, 44, 45, 46, 47] and len(stability["ari"]) == 5 and stability["ari_mean"] >= 0.8
    accuracy = quality["classification_accuracy"]
    print("classification accuracy vs truth:", accuracy)
    assert set(accuracy) == set(DIMENSIONS) and min(accuracy.values()) >= 0.85


def test_themes_label_every_cluster_uniquely_with_distinctive_terms(default_run):
    loaded, analysis = default_run
    themes = analysis.themes
    assert label_problems(themes) == [] and themes["noise"] == 0
    family_words = {"sales": "sales", "marketing": "marketing", "cybersecurity": "security", "supply_chain": "inventory"}
    table = analysis.table.assign(family=loaded.corpus.personas["family"])
    for family, word in family_words.items():
        cluster = table.loc[table["family"] == family, "cluster_id"].mode()[0]
        terms = [t["term"] for t in themes["clusters"][cluster]["terms"][:5]]
        assert word in terms, (family, terms)
    assert all(c["label_source"] == "deterministic" and len(c["examples"]) == 3 for c in themes["clusters"])


def test_clusters_table_and_checks(default_run):
    loaded, analysis = default_run
    table = analysis.table
    assert table.columns.tolist()[:4] == ["persona_index", "persona_id", "cluster_id", "cluster_label"]
    assert [c for c in table.columns[4:]] == [x for d in DIMENSIONS for x in (d, f"{d}_confidence")]
    assert table["seniority_confidence"].between(0, 1).all()
    assert assignment_problems(table, 180, analysis.clusters.noise["noise"]) == []
    assert section_problems(loaded.corpus) == []
    assert dissimilarity_problems(analysis.dissimilarity) == []
    assert html_problems(analysis.html) == []


def test_redundant_pairs_find_the_near_duplicates(default_run):
    loaded, analysis = default_run
    pairs = analysis.redundant
    near = loaded.truth.dropna(subset=["near_duplicate_of"])
    expected = {tuple(sorted(p)) for p in zip(near["near_duplicate_of"], near["persona_id"])}
    found = {tuple(sorted(p)) for p in zip(pairs["persona_id_a"], pairs["persona_id_b"])}
    assert expected <= found and (pairs["similarity"] >= 0.9).all()
    first = pairs.iloc[0]
    texts = loaded.corpus.personas.set_index("persona_id")["text"]
    assert first["text_a"] == texts[first["persona_id_a"]] and first["text_b"] == texts[first["persona_id_b"]]
    assert (pairs["persona_index_a"] < pairs["persona_index_b"]).all()


def test_outputs_are_byte_identical_on_a_rerun(default_run, tmp_path):
    loaded, analysis = default_run
    settings = PersonaTextsSettings()
    first = write_outputs(analysis, tmp_path / "first")
    second = write_outputs(analyse_corpus(load_corpus(settings), settings), tmp_path / "second")
    for name in ("clusters", "dissimilarity", "themes", "redundant_pairs", "html", "summary"):
        assert first[name] == tmp_path / "first" / layout.PERSONA_TEXTS_OUTPUTS[name]
        assert first[name].read_bytes() == second[name].read_bytes(), name
    matrix = read_dissimilarity_csv(first["dissimilarity"])
    assert matrix.shape == (180, 180) and dissimilarity_problems(matrix) == []
    assert np.abs(matrix.to_numpy() - analysis.dissimilarity).max() <= 0.5e-4 + 1e-7
    themes = json.loads(first["themes"].read_text())
    assert [c["label"] for c in themes["clusters"]] == [c["label"] for c in analysis.themes["clusters"]]
    clusters = pd.read_csv(first["clusters"])
    assert clusters["persona_id"].tolist() == analysis.table["persona_id"].tolist()


def test_another_seed_changes_the_corpus_but_not_the_quality():
    settings = PersonaTextsSettings(seed=7, visualization="tsne", k=10)
    analysis = analyse_corpus(load_corpus(settings), settings)
    assert analysis.clusters.params["k_source"] == "fixed" and analysis.clusters.selection_curve is None
    assert analysis.quality["truth"]["ari"] >= 0.8
    assert html_problems(analysis.html) == []


def test_dbscan_eps_from_the_k_distance_knee_and_the_outlier_policies():
    settings = PersonaTextsSettings(method="dbscan", embedded_count=1000)
    loaded = load_corpus(settings)
    analysis = analyse_corpus(loaded, settings)
    curve = analysis.clusters.k_distance
    assert curve["eps"] == analysis.clusters.params["eps"] and curve["min_samples"] == 10
    assert curve["distance"] == sorted(curve["distance"], reverse=True)
    noise = analysis.clusters.noise
    assert noise["policy"] == "keep" and noise["noise"] == noise["noise_before"] > 0
    assert (analysis.table["cluster_id"] == -1).sum() == noise["noise"]
    assert set(analysis.table.loc[analysis.table["cluster_id"] == -1, "cluster_label"]) == {NOISE_LABEL}
    assert assignment_problems(analysis.table, 1000, noise["noise"]) == []
    assert analysis.quality["truth"]["ari"] >= 0.8
    nearest = cluster_personas(analysis.vectors, PersonaTextsSettings(method="dbscan", outliers={"policy": "nearest", "min_similarity": -1.0}))
    assert nearest.noise["noise"] == 0 and nearest.noise["reassigned"] == noise["noise_before"]
    strict = cluster_personas(analysis.vectors, PersonaTextsSettings(method="dbscan", outliers={"policy": "nearest", "min_similarity": 0.99}))
    assert strict.noise["reassigned"] < noise["noise_before"]


def test_outlier_policy_and_knee_on_a_small_example():
    vectors = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99], [-1, 0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1, -1])
    kept, report = apply_outlier_policy(vectors, labels, "keep", 0.0)
    assert kept.tolist() == labels.tolist() and report["noise_share"] == 0.2
    moved, report = apply_outlier_policy(vectors, labels, "nearest", -1.0)
    assert moved[-1] in (0, 1) and report["reassigned"] == 1 and report["noise"] == 0
    stays, report = apply_outlier_policy(vectors, labels, "nearest", 0.5)
    assert stays[-1] == -1 and report["reassigned"] == 0
    points = np.concatenate([np.random.default_rng(0).normal(0, 0.05, (50, 2)), [[5, 5], [-5, 5]]])
    knee = k_distance_knee(points, 4)
    assert knee["eps"] < 1 and knee["rank"][0] == 0


def test_hdbscan_runs_with_noise_reported():
    settings = PersonaTextsSettings(method="hdbscan", embedded_count=600)
    analysis = analyse_corpus(load_corpus(settings), settings)
    assert analysis.clusters.n_clusters >= 8 and analysis.quality["truth"]["ari"] >= 0.7
    assert analysis.quality["stability"]["note"].startswith("hdbscan is deterministic")
    assert assignment_problems(analysis.table, 600, analysis.clusters.noise["noise"]) == []


def test_checks_catch_broken_outputs(default_run):
    _, analysis = default_run
    matrix = analysis.dissimilarity.copy()
    matrix[0, 1] += 0.1
    matrix[2, 2] = 0.3
    problems = dissimilarity_problems(matrix)
    assert any("not symmetric" in p for p in problems) and any("diagonal" in p for p in problems)
    assert dissimilarity_problems(matrix[:, :5]) == ["not square: shape (180, 5)"]
    table = analysis.table.copy()
    table.loc[0, "cluster_id"] = -1
    assert assignment_problems(table, 180, 0) == ["1 personas have cluster -1 but 0 were reported as noise"]
    assert "180 rows for 181 personas" in assignment_problems(analysis.table, 181, 0)[0]
    themes = {"clusters": [{"cluster_id": 0, "label": "A"}, {"cluster_id": 1, "label": "A"}]}
    assert label_problems(themes) == ["labels shared by several clusters: ['A']"]
    broken = analysis.html.replace("</body>", '<script src="https://cdn.plot.ly/plotly.min.js"></script></body>')
    assert html_problems(broken) == ["1 network references, e.g. '<script src=\"https://'"]


def test_dissimilarity_csv_layout(tmp_path):
    matrix = np.array([[0, 0.25, 2], [0.25, 0, 1.23456], [2, 1.23456, 0]], dtype=np.float32)
    path = write_dissimilarity_csv(matrix, tmp_path / "m.csv")
    assert path.read_text() == "persona_index,0,1,2\n0,0.0000,0.2500,2.0000\n1,0.2500,0.0000,1.2346\n2,2.0000,1.2346,0.0000\n"

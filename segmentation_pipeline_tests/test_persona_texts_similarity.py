"""Similarity search from the stored index (no refit), its speed at 10,000 personas, and the model2vec
backend on a tiny model folder built here (nothing is downloaded)."""

import time

import numpy as np
import pytest
from model2vec import StaticModel
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from segmentation_pipeline.errors import ConfigError, InputDataError
from segmentation_pipeline import layout
from segmentation_pipeline.persona_texts.analysis import analyse_corpus, load_corpus, write_outputs
from segmentation_pipeline.persona_texts.embedding import Model2VecEmbedder, TfidfLsaEmbedder, fit_embedder
from segmentation_pipeline.persona_texts.generator import generate_personas
from segmentation_pipeline.persona_texts.settings import EmbeddingSettings, PersonaTextsSettings
from segmentation_pipeline.persona_texts.similarity import (
    SimilarityIndex,
    format_similar,
    load_similarity_index,
    save_similarity_index,
    similar,
)

QUERY_BUDGET_SECONDS = 0.050


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    settings = PersonaTextsSettings()
    loaded = load_corpus(settings)
    analysis = analyse_corpus(loaded, settings)
    folder = tmp_path_factory.mktemp("persona_texts")
    return loaded, analysis, write_outputs(analysis, folder)


def test_similar_answers_from_the_stored_index(stored_run):
    loaded, analysis, files = stored_run
    assert files["index"].as_posix().endswith("/" + layout.PERSONA_TEXTS_INDEX)
    own = loaded.corpus.personas.iloc[3]
    table = similar(own["text"], files["index"], top=5)
    assert table.columns.tolist() == ["rank", "persona_index", "persona_id", "similarity", "cluster_label", "text"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table.loc[0, "persona_id"] == own["persona_id"] and table.loc[0, "similarity"] == pytest.approx(1.0, abs=1e-3)
    assert table["similarity"].is_monotonic_decreasing
    family = loaded.corpus.personas.set_index("persona_id")["family"]
    query = "An account executive who negotiates enterprise deals and keeps a sales pipeline toward quota"
    found = similar(query, files["index"], top=5)
    assert set(family[found["persona_id"]]) == {"sales"}
    assert found.loc[0, "cluster_label"] == analysis.table.set_index("persona_id").loc[found.loc[0, "persona_id"], "cluster_label"]
    text = format_similar(found)
    assert text.splitlines()[0].startswith(" 1. ") and found.loc[0, "persona_id"] in text
    assert len(similar(query, files["index"], top=500)) == 180


def test_query_needs_no_refit_and_rejects_empty_text(stored_run, monkeypatch):
    _, _, files = stored_run
    index = load_similarity_index(files["index"])
    assert isinstance(index.embedder, TfidfLsaEmbedder) and index.metadata["embedding"]["backend"] == "tfidf"
    monkeypatch.setattr(TfidfLsaEmbedder, "fit", lambda *a, **k: pytest.fail("a query must not refit"))
    assert len(index.similar("security analyst hunting threats", top=3)) == 3
    with pytest.raises(InputDataError, match="the description is empty"):
        index.similar("   ")
    with pytest.raises(InputDataError, match="materialize the persona_texts assets first"):
        load_similarity_index(files["index"].with_name("missing.joblib"))


def test_query_against_10000_personas_within_50_ms(tmp_path):
    generated = generate_personas(10_000, seed=3)
    texts = generated.corpus.texts
    embedder = fit_embedder(texts, EmbeddingSettings(), seed=3)
    index = SimilarityIndex(embedder, embedder.encode(texts), generated.corpus.personas["persona_id"].tolist(),
                            texts, ["cluster"] * len(texts))
    path = save_similarity_index(index, tmp_path / "index.joblib")
    started = time.perf_counter()
    stored = load_similarity_index(path)
    load_seconds = time.perf_counter() - started
    queries = ["a nurse manager in a hospital", "penetration tester hardening firewalls", "recruiter onboarding new employees",
               "marketing manager planning campaigns", "procurement specialist negotiating with suppliers"]
    timings = []
    for query in queries * 3:
        started = time.perf_counter()
        stored.similar(query, top=5)
        timings.append(time.perf_counter() - started)
    median = float(np.median(timings))
    print(f"similar() on 10,000 personas: median {median * 1000:.1f} ms per query, index load {load_seconds * 1000:.0f} ms")
    assert median <= QUERY_BUDGET_SECONDS


def tiny_model2vec(folder):
    """A model2vec folder with a 13-word vocabulary and random 16-dimensional vectors."""
    words = ["[UNK]", "[PAD]", "sales", "deals", "quota", "security", "threat", "firewalls", "data", "models",
             "statistical", "senior", "junior"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(0).normal(size=(len(words), 16)).astype(np.float32)
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(folder)
    return folder


def test_model2vec_backend_from_a_local_folder(tmp_path):
    folder = tiny_model2vec(tmp_path / "models" / "tiny")
    settings = PersonaTextsSettings(embedded_count=60, embedding={"backend": "model2vec", "model_path": "models/tiny"})
    loaded = load_corpus(settings)
    analysis = analyse_corpus(loaded, settings, root=tmp_path)
    assert analysis.summary["embedding"] == {"backend": "model2vec", "model": str(folder), "dimensions": 16}
    assert analysis.vectors.shape == (60, 16)
    norms = np.linalg.norm(analysis.vectors, axis=1)  # 0 for a text with none of the 11 known words
    assert np.allclose(norms[norms > 0], 1, atol=1e-5) and (norms > 0).mean() > 0.5
    files = write_outputs(analysis, tmp_path / "out")
    index = load_similarity_index(files["index"])
    assert isinstance(index.embedder, Model2VecEmbedder) and index.embedder._model is None  # the folder, not the model, is stored
    table = index.similar("sales deals quota", top=3)
    assert len(table) == 3 and table["similarity"].is_monotonic_decreasing


def test_model2vec_folder_problems_name_the_key(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"persona_texts.embedding.model_path: '.*half' lacks model.safetensors, tokenizer.json"):
        fit_embedder(["a"], EmbeddingSettings(backend="model2vec", model_path=str(tmp_path / "half")), 0)
    with pytest.raises(ConfigError, match="is not a folder; it must be a local model2vec model folder"):
        fit_embedder(["a"], EmbeddingSettings(backend="model2vec", model_path="no/such/model"), 0, root=tmp_path)

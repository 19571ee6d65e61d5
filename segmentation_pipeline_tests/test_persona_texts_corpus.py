"""Persona texts input: the `=== PERSONA N ===` format, CSV, the pipeline's own personas, the embedded
corpus and the settings section."""

import pandas as pd
import pytest
from pydantic import ValidationError

from segmentation_pipeline.errors import ConfigError, InputDataError
from segmentation_pipeline.persona_texts.analysis import load_corpus
from segmentation_pipeline.persona_texts.checks import section_problems
from segmentation_pipeline.persona_texts.corpus import (
    EMPTY_SECTION,
    PersonaCorpus,
    combine_corpora,
    parse_persona_text,
    read_persona_csv,
    read_persona_file,
)
from segmentation_pipeline.persona_texts.embedding import fit_embedder
from segmentation_pipeline.persona_texts.generator import generate_personas, load_templates, persona_text_file
from segmentation_pipeline.persona_texts.pipeline_personas import persona_text, pipeline_persona_corpus
from segmentation_pipeline.persona_texts.settings import EmbeddingSettings, PersonaTextsSettings

FILE_TEXT = """=== PERSONA 1 ===
You are a Junior UX Researcher specialising in usability testing.

=== PERSONA 2 ===

=== PERSONA 3 ===
You are a Senior Data Scientist.
You build forecasting models.
=== PERSONA 4 ===
You are a  junior UX researcher specialising in usability testing.
"""


def test_sections_become_personas_empty_ones_rejected_duplicates_kept():
    corpus = parse_persona_text(FILE_TEXT, "personas.txt")
    personas = corpus.personas
    assert personas["persona_id"].tolist() == ["1", "3", "4"]
    assert personas["persona_index"].tolist() == [0, 1, 2]
    assert personas.loc[1, "text"] == "You are a Senior Data Scientist.\nYou build forecasting models."
    assert corpus.rejected.to_dict(orient="records") == [
        {"persona_id": "2", "source": "personas.txt", "line": 4, "reason": EMPTY_SECTION}
    ]
    assert personas["duplicate_of"].tolist() == [None, None, "1"]  # same words, case and spacing aside
    assert corpus.duplicate_count() == 1
    assert corpus.sections == 4 and section_problems(corpus) == []


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("intro\n=== PERSONA 1 ===\nx\n", 1, "text before the first"),
        ("=== PERSONA 1 ===\nx\n== PERSONA 2 ==\ny\n", 3, "malformed header"),
        ("=== PERSONA 1 ===\nx\n=== PERSONA one ===\ny\n", 3, "malformed header"),
        ("=== PERSONA 1 ===\nx\n=== PERSONA 1 ===\ny\n", 3, "repeats the header of line 1"),
    ],
)
def test_malformed_text_is_one_line_error_naming_the_line(text, line, problem):
    with pytest.raises(InputDataError) as error:
        parse_persona_text(text, "personas.txt")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"personas.txt: line {line}: ") and problem in message


def test_file_without_header_and_invalid_utf8(tmp_path):
    with pytest.raises(InputDataError, match="no '=== PERSONA <number> ===' header"):
        parse_persona_text("\n\n", "empty.txt")
    path = tmp_path / "personas.txt"
    path.write_bytes("=== PERSONA 1 ===\ncafé\n=== PERSONA 2 ===\n".encode() + b"caf\xe9 latin-1\n")
    with pytest.raises(InputDataError, match=r"personas.txt': line 4: not valid UTF-8 \(byte 0xe9\)"):
        read_persona_file(path)
    path.write_text(FILE_TEXT, encoding="utf-8")
    assert read_persona_file(path).personas["persona_id"].tolist() == ["1", "3", "4"]


def test_csv_with_id_and_text_columns(tmp_path):
    path = tmp_path / "personas.csv"
    pd.DataFrame({"key": ["a", "b", "c"], "body": ["First persona text", "", "Third, with a comma"]}).to_csv(path, index=False)
    corpus = read_persona_csv(path, id_column="key", text_column="body")
    assert corpus.personas["persona_id"].tolist() == ["a", "c"]
    assert corpus.personas["text"].tolist() == ["First persona text", "Third, with a comma"]
    assert corpus.rejected[["persona_id", "line", "reason"]].to_dict(orient="records") == [
        {"persona_id": "b", "line": 3, "reason": EMPTY_SECTION}
    ]
    assert section_problems(corpus) == []
    with pytest.raises(InputDataError, match=r"Persona file '.*personas.csv': column 'text' not found \(columns: key, body\)"):
        read_persona_csv(path, id_column="key")


def test_section_problems_catches_a_dropped_section():
    corpus = parse_persona_text(FILE_TEXT, "personas.txt")
    dropped = PersonaCorpus(corpus.personas, corpus.rejected.iloc[0:0], corpus.sections)
    assert section_problems(dropped) == ["4 sections read but 3 accounted for (personas + rejected)"]


def test_pipeline_personas_become_texts():
    personas = {
        "method": "kmeans",
        "personas": [
            {"persona_name": "Loyal Home Shoppers [HIGH VALUE]", "cluster_id": 0, "rank": 1, "value_tier": "HIGH",
             "value": {"revenue_share": 0.4}, "behaviour": {"top_departments": [{"name": "Home", "share": 0.5}]},
             "description": "Frequent buyers of home goods.",
             "recommended_actions": [{"key": "vip", "action": "Offer a loyalty programme", "value": 0.4}]},
            {"persona_name": "Lapsed Bargain Hunters [LOW VALUE]", "cluster_id": 1, "description": "Bought once, on sale."},
        ],
    }
    text = persona_text(personas["personas"][0])
    assert text.splitlines() == [
        "Loyal Home Shoppers [HIGH VALUE].", "Frequent buyers of home goods.", "value tier: HIGH.", "name: Home.",
        "key: vip.", "action: Offer a loyalty programme.",
    ]
    corpus = pipeline_persona_corpus({"retail/kmeans": personas, "leads/gmm": {"personas": personas["personas"][:1]}})
    assert corpus.personas["persona_id"].tolist() == ["retail/kmeans:0", "retail/kmeans:1", "leads/gmm:0"]
    assert corpus.personas["source"].tolist() == ["pipeline:retail/kmeans"] * 2 + ["pipeline:leads/gmm"]
    assert corpus.personas["duplicate_of"].tolist() == [None, None, "retail/kmeans:0"]
    with pytest.raises(InputDataError, match="'retail/kmeans': expected a dict with a `personas` list"):
        pipeline_persona_corpus({"retail/kmeans": {"method": "kmeans"}})


def test_pipeline_personas_join_the_embedded_corpus():
    settings = PersonaTextsSettings(embedded_count=40, include_pipeline_personas=True)
    extra = {"retail/kmeans": {"personas": [{"persona_name": "Weekend Shoppers", "cluster_id": 0, "description": "x"}]}}
    loaded = load_corpus(settings, pipeline_personas=extra)
    assert len(loaded.corpus.personas) == 41 and loaded.corpus.personas["persona_id"].iloc[-1] == "retail/kmeans:0"
    assert loaded.truth["persona_id"].tolist() == loaded.corpus.personas["persona_id"].tolist()
    assert loaded.truth["family"].iloc[-1] is None or pd.isna(loaded.truth["family"].iloc[-1])
    with pytest.raises(InputDataError, match="persona ids repeat"):
        combine_corpora([loaded.corpus, loaded.corpus])


def test_embedded_corpus_is_deterministic_balanced_and_has_ground_truth():
    first, again, other = generate_personas(180, 42), generate_personas(180, 42), generate_personas(180, 7)
    assert first.corpus.texts == again.corpus.texts and first.corpus.texts != other.corpus.texts
    families = first.truth["family"].value_counts()
    assert len(families) == len(load_templates().families) == 10
    assert families.max() - families.min() <= 1 + 5  # balanced originals plus at most the near duplicates
    assert first.corpus.personas["family"].tolist() == first.truth["family"].tolist()
    near = first.truth.dropna(subset=["near_duplicate_of"])
    assert len(near) == 5 and set(near["near_duplicate_of"]) <= set(first.truth["persona_id"])
    assert "  " not in " ".join(first.corpus.texts) and " a Entry" not in " ".join(first.corpus.texts)
    round_trip = parse_persona_text(persona_text_file(first.corpus), "generated")
    assert round_trip.texts == first.corpus.texts


def test_settings_defaults_and_errors(tmp_path):
    settings = PersonaTextsSettings()
    assert (settings.source, settings.method, settings.k, settings.embedding.backend) == ("embedded", "kmeans", "auto", "tfidf")
    with pytest.raises(ValidationError, match=r"persona_texts.embedding.model_path is required"):
        PersonaTextsSettings(embedding={"backend": "model2vec"})
    with pytest.raises(ValidationError, match="persona_texts.path is required"):
        PersonaTextsSettings(source="file")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PersonaTextsSettings(clusters=3)
    with pytest.raises(ValidationError, match="k must be `auto` or an integer >= 2"):
        PersonaTextsSettings(k=1)
    with pytest.raises(ConfigError, match=r"persona_texts.embedding.model_path: '.*nowhere' is not a folder"):
        fit_embedder(["a b"], EmbeddingSettings(backend="model2vec", model_path="nowhere"), 0, root=tmp_path)


def test_file_sources_relative_to_the_root(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "personas.txt").write_text(FILE_TEXT, encoding="utf-8")
    loaded = load_corpus(PersonaTextsSettings(source="file", path="in/personas.txt"), root=tmp_path)
    assert loaded.truth is None and loaded.corpus.personas["persona_id"].tolist() == ["1", "3", "4"]
    pd.DataFrame({"id": ["x", "y"], "text": ["one", "two"]}).to_csv(tmp_path / "in" / "personas.csv", index=False)
    loaded = load_corpus(PersonaTextsSettings(source="file", path="in/personas.csv"), root=tmp_path)
    assert loaded.corpus.texts == ["one", "two"] and loaded.corpus.personas["family"].tolist() == [None, None]

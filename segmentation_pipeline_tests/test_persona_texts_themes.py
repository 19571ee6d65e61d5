"""Themes: class-based TF-IDF terms, unique deterministic labels, and optional LLM labels through the
project's narrative client against a real HTTP server on 127.0.0.1."""

import json
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from segmentation_pipeline.persona_texts.analysis import analyse_corpus, load_corpus
from segmentation_pipeline.persona_texts.checks import label_problems
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline.persona_texts.themes import (
    class_tfidf,
    deterministic_labels,
    extract_themes,
    make_unique,
    narrative_asker,
    surface_form,
    term_counts,
    top_terms,
)
from segmentation_pipeline_tests.conftest import local_http_server, send_json

TEXTS = [
    "Senior UX Researcher running usability testing with users.",
    "UX Researcher planning usability testing and interviews.",
    "Account executive closing sales deals toward quota.",
    "Sales representative closing deals and prospecting.",
]
LABELS = np.array([0, 0, 1, 1])
VECTORS = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]


def test_class_tfidf_ranks_what_sets_a_cluster_apart():
    counts, terms = term_counts(TEXTS * 2)  # doubled: a term in half of the personas is still distinctive
    clusters, weights = class_tfidf(counts, np.tile(LABELS, 2))
    assert clusters.tolist() == [0, 1]
    best = top_terms(weights, terms, 4)
    assert {t for t, _ in best[0]} >= {"usability", "usability testing"} and {t for t, _ in best[1]} >= {"deals", "closing"}
    assert not {t for t, _ in best[0]} & {t for t, _ in best[1]}
    assert all(w1 >= w2 for terms_ in best for (_, w1), (_, w2) in zip(terms_, terms_[1:]))


def test_labels_are_readable_and_unique():
    assert surface_form("ux researcher", TEXTS) == "UX Researcher"
    assert surface_form("deals", TEXTS) == "Deals"
    same = [("sales", 0.5), ("deals", 0.4), ("quota", 0.3), ("enterprise", 0.2)]
    other = [("sales", 0.5), ("deals", 0.4), ("quota", 0.3), ("retail", 0.2)]
    labels = deterministic_labels([same, other], [["enterprise sales"], ["retail sales"]])
    assert labels == ["Sales, Deals, Quota, Enterprise", "Sales, Deals, Quota, Retail"]
    assert deterministic_labels([same[:1], same[:1]], [[], []]) == ["Sales", "Sales (2)"]
    assert deterministic_labels([[("machine", 0.9), ("machine learning", 0.8), ("models", 0.5), ("data", 0.4)]], [[]]) == [
        "Machine Learning, Models, Data"
    ]
    assert make_unique(["A", "A", "A (2)"]) == ["A", "A (3)", "A (2)"]


class _LabelHandler(BaseHTTPRequestHandler):
    """Chat endpoint: /same always answers the same label, /fail answers HTTP 500, /long rambles."""

    prompts: list[str] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _LabelHandler.prompts.append(body["messages"][-1]["content"])
        if self.path.startswith("/fail"):
            self.send_response(500)
            self.end_headers()
            return
        reply = "Customer-facing professionals" if self.path.startswith("/same") else " ".join(["word"] * 20)
        send_json(self, {"choices": [{"message": {"role": "assistant", "content": f'"{reply}."'}}]})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def chat_server():
    with local_http_server(_LabelHandler) as url:
        yield url


def test_llm_labels_are_made_unique_or_fall_back(chat_server):
    ids = [f"p{i}" for i in range(4)]
    ask = narrative_asker(chat_server + "/same", "test-model", None, timeout_seconds=5)
    themes = extract_themes(TEXTS, ids, LABELS, VECTORS, top=5, ask=ask)
    first, second = themes["clusters"]
    assert first["label"] == "Customer-facing professionals" and first["label_source"] == "llm"
    assert second["label"] == f"Customer-facing professionals ({second['deterministic_label']})"
    assert second["label_source"] == "llm (made unique with the deterministic label)"
    assert label_problems(themes) == []
    assert "Distinctive terms: " in _LabelHandler.prompts[-1] and "Account executive closing" in _LabelHandler.prompts[-1]
    failing = extract_themes(TEXTS, ids, LABELS, VECTORS, ask=narrative_asker(chat_server + "/fail", "m", None, 5))
    assert [c["label"] for c in failing["clusters"]] == [c["deterministic_label"] for c in failing["clusters"]]
    assert failing["clusters"][0]["label_source"].startswith("deterministic (LLM failed: ") and "HTTP 500" in failing["clusters"][0]["label_source"]
    rambling = extract_themes(TEXTS, ids, LABELS, VECTORS, ask=narrative_asker(chat_server + "/long", "m", None, 5))
    assert rambling["clusters"][0]["label_source"] == "deterministic (LLM reply was empty or too long)"


def test_llm_labels_only_when_enabled(chat_server):
    ask = narrative_asker(chat_server + "/same", "m", None, 5)
    off = PersonaTextsSettings(embedded_count=40, k=4)
    on = PersonaTextsSettings(embedded_count=40, k=4, llm_labels=True)
    assert {c["label_source"] for c in analyse_corpus(load_corpus(off), off, ask=ask).themes["clusters"]} == {"deterministic"}
    analysis = analyse_corpus(load_corpus(on), on, ask=ask)
    assert analysis.themes["clusters"][0]["label"] == "Customer-facing professionals"
    assert label_problems(analysis.themes) == [] and analysis.table["cluster_label"].iloc[0] in {
        c["label"] for c in analysis.themes["clusters"]
    }

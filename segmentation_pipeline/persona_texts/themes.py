"""What each cluster is about: its distinctive terms (class-based TF-IDF) and a unique readable label.

Class-based TF-IDF treats all personas of a cluster as one document: a term weighs
    (its count in the cluster / words in the cluster) * log(1 + average words per cluster / its count overall),
so words every persona uses ("you", "work", "colleagues") fall away and the words that set a cluster
apart rise. Ties are broken alphabetically, so the terms are deterministic.

The deterministic label joins the top terms that add new words ("UX Researcher, Usability Testing"),
written as the personas write them. An optional LLM label (any `ask(prompt) -> reply` callable, e.g.
`narrative_asker` over the project's narrative client) replaces it when the reply is usable; a failed
or unusable reply falls back to the deterministic label and says why in `label_source`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from segmentation_pipeline.narrative import NarrativeError, request_narrative

LABEL_TERMS = 3  # terms joined into a deterministic label
EXAMPLES = 3  # personas closest to the centroid, listed per cluster (and shown to the LLM)
MAX_LLM_LABEL_WORDS = 8
NOISE_LABEL = "Unclustered (noise)"
BOILERPLATE_SHARE = 0.5
TOKEN_PATTERN = r"(?u)\b[A-Za-z][A-Za-z0-9+#/-]*[A-Za-z0-9+#]\b"  # words like "CI/CD", "C++", "A/B"


def term_counts(texts: list[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts of words and word pairs per persona, and the terms. English stop words go, and so do
    terms used by more than half of the personas (template phrasing such as "day to day" cannot set
    one cluster apart; a term confined to one of two equal clusters is used by exactly half)."""
    options = {"stop_words": "english", "ngram_range": (1, 2), "token_pattern": TOKEN_PATTERN, "dtype": np.int32}
    try:
        vectorizer = CountVectorizer(max_df=BOILERPLATE_SHARE, **options)
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # every term is that common (a tiny or repetitive corpus): keep them all
        vectorizer = CountVectorizer(**options)
        counts = vectorizer.fit_transform(texts)
    return counts.tocsr(), vectorizer.get_feature_names_out()


def class_tfidf(counts: sp.csr_matrix, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, weights per cluster x term) for the clusters 0..k-1 present (noise excluded)."""
    clusters = np.unique(labels[labels >= 0])
    membership = sp.csr_matrix(
        (np.ones(int((labels >= 0).sum())), (np.searchsorted(clusters, labels[labels >= 0]), np.flatnonzero(labels >= 0))),
        shape=(len(clusters), counts.shape[0]),
    )
    per_class = np.asarray((membership @ counts).todense(), dtype=np.float64)
    words = per_class.sum(axis=1, keepdims=True)
    frequency = per_class.sum(axis=0)
    average = words.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        idf = np.log1p(average / np.where(frequency > 0, frequency, np.inf))
        weights = per_class / np.where(words > 0, words, 1.0) * idf
    return clusters, weights


def top_terms(weights: np.ndarray, terms: np.ndarray, count: int) -> list[list[tuple[str, float]]]:
    """Per row, the `count` highest-weighted terms (ties alphabetically), with weights > 0."""
    result = []
    for row in weights:
        order = np.lexsort((terms, -row))[:count]
        result.append([(str(terms[i]), round(float(row[i]), 6)) for i in order if row[i] > 0])
    return result


def surface_form(phrase: str, texts: list[str]) -> str:
    """The phrase as the texts most often write it ("ux researcher" -> "UX Researcher"); capitalised
    words when the texts only have it in lower case."""
    pattern = re.compile(r"\b" + r"\s+".join(map(re.escape, phrase.split())) + r"\b", re.IGNORECASE)
    found = Counter(" ".join(m.group(0).split()) for text in texts for m in pattern.finditer(text))
    written = [form for form, _ in sorted(found.items(), key=lambda item: (-item[1], item[0]))]
    for form in written:
        if any(word[0].isupper() for word in form.split()):
            return form
    return " ".join(word[:1].upper() + word[1:] for word in phrase.split())


def deterministic_labels(terms_per_cluster: list[list[tuple[str, float]]], texts_per_cluster: list[list[str]]) -> list[str]:
    """One label per cluster from its top terms; clusters whose labels clash take further terms until
    every label is unique (a numbered suffix as the last resort)."""
    def label(terms: list[tuple[str, float]], wanted: int) -> list[str]:
        chosen: list[str] = []
        covered: set[str] = set()
        for term, _ in terms:
            words = set(term.split())
            if words <= covered:
                continue
            widened = next((i for i, c in enumerate(chosen) if set(c.split()) < words), None)
            if widened is not None:  # "machine" then "machine learning": keep the phrase
                chosen[widened] = term
            elif len(chosen) < wanted:
                chosen.append(term)
            covered |= words
            if len(chosen) == wanted and widened is None:
                break
        return chosen

    wanted = [LABEL_TERMS] * len(terms_per_cluster)
    chosen = [label(terms, LABEL_TERMS) for terms in terms_per_cluster]
    while True:
        keys = [tuple(c) for c in chosen]
        clashing = [i for i, key in enumerate(keys) if keys.count(key) > 1]
        extendable = [i for i in clashing if len(label(terms_per_cluster[i], wanted[i] + 1)) > len(chosen[i])]
        if not extendable:
            break
        for i in extendable:
            wanted[i] += 1
            chosen[i] = label(terms_per_cluster[i], wanted[i])
    labels = [", ".join(surface_form(term, texts[:200]) for term in terms) or "Cluster" for terms, texts in zip(chosen, texts_per_cluster)]
    return make_unique(labels)


def make_unique(labels: list[str]) -> list[str]:
    """Labels in order, a repeated one suffixed " (2)", " (3)", ... (first occurrence unchanged)."""
    seen: Counter = Counter()
    taken = set(labels)
    result = []
    for label in labels:
        seen[label] += 1
        if seen[label] > 1:
            number = seen[label]
            while f"{label} ({number})" in taken:
                number += 1
            label = f"{label} ({number})"
            taken.add(label)
        result.append(label)
    return result


def extract_themes(
    texts: list[str],
    persona_ids: list[str],
    labels: np.ndarray,
    vectors: np.ndarray,
    top: int = 10,
    ask: Callable[[str], str] | None = None,
) -> dict:
    """{"clusters": [{"cluster_id", "label", "label_source", "size", "terms", "examples"}], "noise": n}
    in cluster order; `ask` (optional) asks an LLM for labels."""
    labels = np.asarray(labels)
    counts, vocabulary = term_counts(texts)
    clusters, weights = class_tfidf(counts, labels)
    terms = top_terms(weights, vocabulary, top)
    members = [np.flatnonzero(labels == c) for c in clusters]
    texts_per_cluster = [[texts[i] for i in rows] for rows in members]
    fallback = deterministic_labels(terms, texts_per_cluster)
    examples = [_closest_to_centroid(vectors, rows) for rows in members]
    chosen, sources = list(fallback), ["deterministic"] * len(clusters)
    if ask is not None:
        chosen, sources = _llm_labels(ask, terms, [[texts[i] for i in ex] for ex in examples], fallback)
    return {
        "clusters": [
            {
                "cluster_id": int(c),
                "label": chosen[i],
                "label_source": sources[i],
                "deterministic_label": fallback[i],
                "size": int(len(members[i])),
                "terms": [{"term": t, "weight": w} for t, w in terms[i]],
                "examples": [persona_ids[j] for j in examples[i]],
            }
            for i, c in enumerate(clusters)
        ],
        "noise": int((labels < 0).sum()),
    }


def cluster_label_map(themes: dict) -> dict[int, str]:
    """cluster id -> label, with the noise label for -1."""
    return {-1: NOISE_LABEL, **{c["cluster_id"]: c["label"] for c in themes["clusters"]}}


def _closest_to_centroid(vectors: np.ndarray, rows: np.ndarray) -> list[int]:
    centroid = vectors[rows].mean(axis=0)
    similarity = vectors[rows] @ centroid
    return [int(rows[i]) for i in np.lexsort((rows, -similarity))[:EXAMPLES]]


def label_prompt(terms: list[tuple[str, float]], examples: list[str]) -> str:
    shown = "\n".join(f"- {text[:400]}" for text in examples)
    return (
        "These personas form one cluster of a persona collection.\n"
        f"Distinctive terms: {', '.join(t for t, _ in terms)}\n"
        f"Typical personas:\n{shown}\n"
        f"Reply with only a short label for the cluster (at most {MAX_LLM_LABEL_WORDS - 3} words), no quotes."
    )


def _llm_labels(ask, terms, examples, fallback) -> tuple[list[str], list[str]]:
    labels, sources = [], []
    for i, deterministic in enumerate(fallback):
        try:
            reply = " ".join(ask(label_prompt(terms[i], examples[i])).split()).strip(" \"'.")
        except NarrativeError as exc:
            labels.append(deterministic)
            sources.append(f"deterministic (LLM failed: {exc})")
            continue
        if not reply or len(reply.split()) > MAX_LLM_LABEL_WORDS:
            labels.append(deterministic)
            sources.append("deterministic (LLM reply was empty or too long)")
        elif reply.casefold() in {label.casefold() for label in labels}:
            labels.append(f"{reply} ({deterministic})")
            sources.append("llm (made unique with the deterministic label)")
        else:
            labels.append(reply)
            sources.append("llm")
    return make_unique(labels), sources


def narrative_asker(
    base_url: str, model: str, api_key: str | None, timeout_seconds: float, temperature: float = 0.2
) -> Callable[[str], str]:
    """`ask(prompt) -> reply` over the project's optional LLM client (configured by the `llm:` section)."""
    return functools.partial(
        request_narrative, base_url=base_url, model=model, api_key=api_key,
        timeout_seconds=timeout_seconds, temperature=temperature,
    )

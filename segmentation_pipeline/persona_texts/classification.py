"""Classify every persona along dimensions (seniority, industry, expertise, priorities, challenges)
from a YAML of label descriptions and keywords shipped in this package, with no transformer download.

A label's score for a persona = cosine similarity between the persona's vector and the vector of
the label's description (both from the corpus's embedder) + KEYWORD_WEIGHT per keyword of the label
the persona uses (at most MAX_KEYWORD_HITS counted). The persona takes the best-scoring label; its
confidence is that label's softmax probability over the dimension's labels at temperature
SOFTMAX_TEMPERATURE (1 / number of labels = no preference, near 1 = clear winner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError
from sklearn.feature_extraction.text import CountVectorizer

from segmentation_pipeline.errors import InputDataError
from segmentation_pipeline.persona_texts.embedding import Embedder

DIMENSIONS_PATH = Path(__file__).parent / "data" / "dimensions.yml"
KEYWORD_WEIGHT = 0.15
MAX_KEYWORD_HITS = 3
SOFTMAX_TEMPERATURE = 0.05
KEYWORD_PATTERN = r"(?u)\b[\w][\w-]*\b"


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: Annotated[str, Field(min_length=1)]
    keywords: list[Annotated[str, Field(min_length=1)]] = []


class Dimensions(RootModel[dict[str, Annotated[dict[str, Label], Field(min_length=2)]]]):
    """dimension -> label -> description and keywords."""


def load_dimensions(path: str | Path | None = None) -> dict[str, dict[str, Label]]:
    path = Path(path) if path is not None else DIMENSIONS_PATH
    try:
        return Dimensions.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).root
    except (OSError, yaml.YAMLError) as exc:
        raise InputDataError(f"{path}: cannot be read as YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputDataError(f"{path}: {problems}") from None


def keyword_hits(texts: list[str], keywords: list[str]) -> np.ndarray:
    """(personas x keywords) 0/1: does the persona use the keyword (whole words, case-insensitive).
    One pass over the texts for all keywords, whatever their number of words."""
    analyzer = CountVectorizer(token_pattern=KEYWORD_PATTERN).build_analyzer()
    normalised = [" ".join(analyzer(k)) for k in keywords]
    vocabulary = sorted({k for k in normalised if k})
    if not vocabulary:
        return np.zeros((len(texts), len(keywords)), dtype=np.int8)
    longest = max(len(k.split()) for k in vocabulary)
    present = CountVectorizer(
        vocabulary=vocabulary, ngram_range=(1, longest), token_pattern=KEYWORD_PATTERN, binary=True, dtype=np.int8
    ).transform(texts).toarray()
    column = {k: i for i, k in enumerate(vocabulary)}
    hits = np.zeros((len(texts), len(keywords)), dtype=np.int8)
    for j, keyword in enumerate(normalised):
        if keyword:
            hits[:, j] = present[:, column[keyword]]
    return hits


def classify_personas(
    texts: list[str],
    vectors: np.ndarray,
    embedder: Embedder,
    dimensions: dict[str, dict[str, Label]] | None = None,
) -> pd.DataFrame:
    """One row per persona (in corpus order): `<dimension>` label and `<dimension>_confidence`."""
    dimensions = dimensions if dimensions is not None else load_dimensions()
    keyed = [(dimension, name, keyword) for dimension, labels in dimensions.items() for name, label in labels.items() for keyword in label.keywords]
    hits = keyword_hits(texts, [keyword for _, _, keyword in keyed])
    columns = {}
    for dimension, labels in dimensions.items():
        names = list(labels)
        scores = vectors @ embedder.encode([labels[name].description for name in names]).T
        for j, name in enumerate(names):
            mine = [i for i, (d, n, _) in enumerate(keyed) if d == dimension and n == name]
            scores[:, j] += KEYWORD_WEIGHT * np.minimum(hits[:, mine].sum(axis=1), MAX_KEYWORD_HITS)
        scaled = (scores - scores.max(axis=1, keepdims=True)) / SOFTMAX_TEMPERATURE
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = scores.argmax(axis=1)
        columns[dimension] = np.array(names, dtype=object)[best]
        columns[f"{dimension}_confidence"] = probabilities[np.arange(len(best)), best].round(4)
    return pd.DataFrame(columns)


def classification_agreement(classified: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Share of personas whose label matches the known one, per dimension present in both."""
    return {
        dimension: round(float((classified[dimension].to_numpy() == truth[dimension].to_numpy()).mean()), 6)
        for dimension in classified.columns
        if dimension in truth.columns and not dimension.endswith("_confidence")
    }

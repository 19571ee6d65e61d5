"""Persona texts as unit vectors, with nothing downloaded at run time.

Two backends behind one small interface (`encode(texts)` -> rows of unit length, `describe()` ->
metadata):
- `tfidf` (default, always available): TF-IDF of words and word pairs fitted on the corpus, reduced
  by LSA (truncated SVD) so that personas sharing related vocabulary end up close even when they
  share few exact words.
- `model2vec`: a model2vec static model read from a local folder (config.json, model.safetensors,
  tokenizer.json, as written by `StaticModel.save_pretrained`). The folder must exist: model2vec
  would otherwise treat the path as a model-hub name and try to download it.

Cosine similarity between personas is then a plain dot product of their vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.persona_texts.settings import EmbeddingSettings

MODEL_PATH_KEY = "persona_texts.embedding.model_path"
MODEL2VEC_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MAX_VOCABULARY = 50_000  # keeps the stored query model small; rarer terms add little to 100 LSA dimensions


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict: ...


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (all-zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


class TfidfLsaEmbedder:
    """TF-IDF (sublinear term frequency, English stop words, words and word pairs) + LSA."""

    def __init__(self, vectorizer: TfidfVectorizer, svd: TruncatedSVD):
        self.vectorizer = vectorizer
        self.svd = svd

    @classmethod
    def fit(cls, texts: list[str], components: int, seed: int) -> TfidfLsaEmbedder:
        vectorizer = TfidfVectorizer(
            sublinear_tf=True, stop_words="english", ngram_range=(1, 2), min_df=1, max_features=MAX_VOCABULARY,
            dtype=np.float32,
        )
        terms = vectorizer.fit_transform(texts)
        dimensions = max(1, min(components, terms.shape[0] - 1, terms.shape[1] - 1))
        with threadpool_limits(limits=1):  # one BLAS thread: bit-identical vectors on every run
            svd = TruncatedSVD(n_components=dimensions, algorithm="randomized", n_iter=5, random_state=seed)
            svd.fit(terms)
        return cls(vectorizer, svd)

    def encode(self, texts: list[str]) -> np.ndarray:
        # sparse x dense product (scipy, no BLAS threads): deterministic, and no thread-pool switching,
        # which alone costs tens of milliseconds per similarity query
        return unit_rows(self.svd.transform(self.vectorizer.transform(texts)))

    def describe(self) -> dict:
        return {
            "backend": "tfidf",
            "model": "tfidf+lsa",
            "dimensions": int(self.svd.n_components),
            "vocabulary_size": len(self.vectorizer.vocabulary_),
            "explained_variance": round(float(self.svd.explained_variance_ratio_.sum()), 4),
        }


class Model2VecEmbedder:
    """A model2vec StaticModel from a local folder; only the folder is pickled, the model is re-read."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._model = None

    def __getstate__(self) -> dict:
        return {"folder": self.folder}

    def __setstate__(self, state: dict) -> None:
        self.folder, self._model = state["folder"], None

    @property
    def model(self):
        if self._model is None:
            self._model = load_model2vec(self.folder)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self.model.encode(list(texts), show_progress_bar=False, use_multiprocessing=False))

    def describe(self) -> dict:
        return {"backend": "model2vec", "model": str(self.folder), "dimensions": int(self.model.dim)}


def load_model2vec(folder: Path):
    """The StaticModel in `folder`; ConfigError naming the key when the folder is not a model."""
    from model2vec import (
        StaticModel,  # imported here: only the model2vec backend needs it
    )

    missing = [name for name in MODEL2VEC_FILES if not (folder / name).is_file()]
    if not folder.is_dir() or missing:
        problem = "is not a folder" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise ConfigError(
            f"{MODEL_PATH_KEY}: '{folder}' {problem}; it must be a local model2vec model folder "
            "(models are never downloaded)"
        )
    try:
        return StaticModel.from_pretrained(folder)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(f"{MODEL_PATH_KEY}: '{folder}' cannot be loaded as a model2vec model: {exc}") from None


def fit_embedder(texts: list[str], settings: EmbeddingSettings, seed: int, root: Path | None = None) -> Embedder:
    """The configured embedder, fitted on `texts` where the backend learns from the corpus; a relative
    model_path is relative to `root` (default: the working directory)."""
    if settings.backend == "model2vec":
        folder = Path(settings.model_path)
        embedder = Model2VecEmbedder(folder if folder.is_absolute() or root is None else Path(root) / folder)
        embedder.model  # load now: a bad folder fails before any work is done
        return embedder
    return TfidfLsaEmbedder.fit(texts, settings.lsa_components, seed)

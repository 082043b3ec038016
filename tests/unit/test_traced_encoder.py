"""The traced MiniLM forward pass gives sentence-transformers' vectors, in input order."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from app.retrieval.embedder import LocalEmbedder
from app.retrieval.traced_encoder import TracedEncoder

TEXTS = [
    "How often does SQLite run a checkpoint in WAL mode?",
    "VACUUM",
    "word " * 400,  # past the 256-token window: truncated exactly as sentence-transformers does
    "Readers do not block writers, and writers do not block readers.",
    "ünïcödé, emoji ✓ and CJK 東京",
    "a",
]


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    embedder = LocalEmbedder(batch_size=4)
    embedder.embed_documents(["load"])
    return embedder


def reference(embedder: LocalEmbedder, texts: list[str]) -> Any:
    model = embedder._model
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)


def test_the_default_model_is_traced(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder._traced, TracedEncoder)
    assert embedder._traced.normalize


def test_batches_with_padding_match_sentence_transformers_in_input_order(
    embedder: LocalEmbedder,
) -> None:
    got = embedder.embed_documents(TEXTS)  # batches of 4, longest first, then put back
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(embedder, TEXTS), atol=2e-6)


@pytest.mark.parametrize("text", TEXTS)
def test_a_lone_query_matches_sentence_transformers(embedder: LocalEmbedder, text: str) -> None:
    np.testing.assert_allclose(
        embedder.embed_query(text), reference(embedder, [text])[0], atol=2e-6
    )


def test_concurrent_callers_get_their_own_rows(embedder: LocalEmbedder) -> None:
    traced = embedder._traced
    assert traced is not None
    expected = reference(embedder, TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: traced.encode([TEXTS[i % 6]], 8), range(24)))
    for i, row in enumerate(results):
        np.testing.assert_allclose(row[0], expected[i % 6], atol=2e-6)


def test_another_pooling_keeps_the_sentence_transformers_path(embedder: LocalEmbedder) -> None:
    transformer = embedder._model[0]
    cls_pooled = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="cls")])
    assert TracedEncoder.from_sentence_transformer(cls_pooled) is None


def test_tracing_prints_nothing_and_leaves_transformers_logging_as_it_was() -> None:
    # A fresh process: transformers warns once per process, so only a first trace shows it.
    script = (
        "import logging, transformers\n"
        "from app.retrieval.embedder import LocalEmbedder\n"
        "before = logging.getLogger('transformers').level\n"
        "LocalEmbedder().embed_query('hello')\n"
        "print(before, logging.getLogger('transformers').level)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr == ""
    assert done.stdout.split() == [str(logging.WARNING)] * 2

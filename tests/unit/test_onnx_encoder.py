"""The exported MiniLM (float32), run by ONNX Runtime, gives sentence-transformers' vectors in
order. The int8 default is tested in test_quantize.py."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from app.retrieval.embedder import LocalEmbedder, local_model_path
from app.retrieval.onnx_encoder import OnnxEncoder

TEXTS = [
    "How often does SQLite run a checkpoint in WAL mode?",
    "VACUUM",
    "word " * 400,  # past the 256-token window: truncated exactly as sentence-transformers does
    "Readers do not block writers, and writers do not block readers.",
    "ünïcödé, emoji ✓ and CJK 東京",
    "a",
]


@pytest.fixture(scope="module")
def model() -> SentenceTransformer:
    return SentenceTransformer(str(local_model_path()), device="cpu")


@pytest.fixture(scope="module", params=["exported", "loaded"])
def embedder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LocalEmbedder:
    """Exported in this process (an empty cache), or loaded from a cache another one filled."""
    cache = tmp_path_factory.mktemp("encoder-cache")
    if request.param == "loaded":
        LocalEmbedder(precision="float32", cache_dir=cache).embed_query("fill the cache")
    entries = list((cache / "encoders").glob("*")) if request.param == "loaded" else []
    embedder = LocalEmbedder(batch_size=4, precision="float32", cache_dir=cache)
    embedder.embed_documents(["load"])
    assert list((cache / "encoders").glob("*")) == entries or request.param == "exported"
    return embedder


def reference(model: SentenceTransformer, texts: list[str]) -> Any:
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)


def test_the_default_model_is_exported(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder._encoder, OnnxEncoder)
    assert embedder._encoder.normalize


def test_batches_with_padding_match_sentence_transformers_in_input_order(
    embedder: LocalEmbedder, model: SentenceTransformer
) -> None:
    got = embedder.embed_documents(TEXTS)  # batches of 4, longest first, then put back
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(model, TEXTS), atol=2e-6)


@pytest.mark.parametrize("text", TEXTS)
def test_a_lone_query_matches_sentence_transformers(
    embedder: LocalEmbedder, model: SentenceTransformer, text: str
) -> None:
    np.testing.assert_allclose(embedder.embed_query(text), reference(model, [text])[0], atol=2e-6)


def test_concurrent_callers_get_their_own_rows(
    embedder: LocalEmbedder, model: SentenceTransformer
) -> None:
    encoder = embedder._encoder
    assert isinstance(encoder, OnnxEncoder)
    expected = reference(model, TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: encoder.encode([TEXTS[i % 6]], 8, 1), range(24)))
    for i, row in enumerate(results):
        np.testing.assert_allclose(row[0], expected[i % 6], atol=2e-6)


def test_another_pooling_keeps_the_sentence_transformers_path(model: SentenceTransformer) -> None:
    transformer = model[0]
    cls_pooled = SentenceTransformer(modules=[transformer, Pooling(384, pooling_mode="cls")])
    assert OnnxEncoder.from_sentence_transformer(cls_pooled) is None


def test_exporting_prints_nothing_and_leaves_transformers_logging_as_it_was(tmp_path: Path) -> None:
    # A fresh process and an empty cache: transformers warns once per process, so only a
    # first export shows it.
    script = (
        "import logging, transformers\n"
        "from pathlib import Path\n"
        "from app.retrieval.embedder import LocalEmbedder\n"
        "before = logging.getLogger('transformers').level\n"
        f"LocalEmbedder(cache_dir=Path({str(tmp_path)!r})).embed_query('hello')\n"
        "print(before, logging.getLogger('transformers').level)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stderr == ""
    assert done.stdout.split() == [str(logging.WARNING)] * 2


def test_each_thread_count_gets_its_own_session(embedder: LocalEmbedder) -> None:
    encoder = embedder._encoder
    assert isinstance(encoder, OnnxEncoder)
    one, two = encoder.session(1), encoder.session(2)
    assert one.get_session_options().intra_op_num_threads == 1
    assert two.get_session_options().intra_op_num_threads == 2
    assert encoder.session(1) is one  # created once, then reused
    np.testing.assert_allclose(encoder.encode(TEXTS, 4, 2), encoder.encode(TEXTS, 4, 1), atol=1e-6)

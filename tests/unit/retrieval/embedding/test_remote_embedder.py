"""RemoteEmbedder against a real OpenAI-protocol server on loopback, failures included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.ingest.factory import build_ingestor
from app.resources import build_resources
from app.retrieval.embedding.query_cache import QueryCache
from app.retrieval.embedding.remote_embedder import RemoteEmbedder
from app.retrieval.model_http import RemoteServiceError
from app.retrieval.protocols import Embedder
from app.settings import SettingsError, load_settings
from tests.embed_server import ServerState, hashed_vector, make_app
from tests.servers import asgi_server, free_port

STATE = ServerState()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with asgi_server(make_app(STATE)) as url:
        yield f"{url}/v1"


@pytest.fixture
def state(base_url: str) -> ServerState:
    STATE.reset()
    return STATE


@pytest.fixture
def embedder(base_url: str, state: ServerState) -> Iterator[RemoteEmbedder]:
    emb = RemoteEmbedder(
        base_url, "test-model", max_tokens=128, batch_size=2, timeout_s=0.3, backoff_s=0.01
    )
    yield emb
    emb.close()


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, np.float32)
    return array / np.linalg.norm(array)


def test_documents_are_sent_in_batches_and_come_back_in_order(
    embedder: RemoteEmbedder, state: ServerState
) -> None:
    texts = ["alpha beta", "gamma", "delta epsilon", "zeta", "eta theta iota"]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    # Three requests of at most two texts; the server answers each in reverse order.
    assert [p["input"] for _, p in state.requests] == [texts[0:2], texts[2:4], texts[4:]]
    assert all(p["model"] == "test-model" for _, p in state.requests)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, unit(hashed_vector(text, 32)), rtol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert isinstance(embedder, Embedder)


def test_dimension_is_probed_once_when_not_configured(
    embedder: RemoteEmbedder, state: ServerState
) -> None:
    assert embedder.dim == 32
    assert embedder.dim == 32
    assert state.count("embeddings") == 1
    assert embedder.embed_documents([]).shape == (0, 32)
    assert state.count("embeddings") == 1


def test_dimension_is_learnt_from_the_first_answer_without_a_probe(
    embedder: RemoteEmbedder, state: ServerState
) -> None:
    embedder.embed_documents(["one"])
    assert embedder.dim == 32
    assert state.count("embeddings") == 1


def test_configured_dimension_is_checked(base_url: str, state: ServerState) -> None:
    emb = RemoteEmbedder(base_url, "m", max_tokens=128, dim=64, backoff_s=0.01)
    try:
        assert emb.dim == 64 and state.count("embeddings") == 0
        with pytest.raises(RemoteServiceError, match="32 dimensions.*configured for 64"):
            emb.embed_documents(["text"])
    finally:
        emb.close()


def test_query_vectors_are_cached_by_text(embedder: RemoteEmbedder, state: ServerState) -> None:
    first = embedder.embed_query("what is a WAL?")
    again = embedder.embed_query("what is a WAL?")
    assert again is first and not first.flags.writeable
    assert state.count("embeddings") == 1
    embedder.embed_query("another question")
    assert state.count("embeddings") == 2
    assert (embedder.cache.hits, embedder.cache.misses) == (1, 2)


def test_one_cache_serves_several_models_keyed_by_model(base_url: str, state: ServerState) -> None:
    cache = QueryCache()
    a = RemoteEmbedder(base_url, "model-a", max_tokens=128, cache=cache)
    b = RemoteEmbedder(base_url, "model-b", max_tokens=128, cache=cache)
    a2 = RemoteEmbedder(base_url, "model-a", max_tokens=128, cache=cache)
    try:
        a.embed_query("same text")
        b.embed_query("same text")
        a2.embed_query("same text")
        assert [p["model"] for _, p in state.requests] == ["model-a", "model-b"]
        assert len(cache) == 2
    finally:
        for emb in (a, b, a2):
            emb.close()


@pytest.mark.parametrize("modes", [("500",), ("429",), ("503", "502"), ("slow",)])
def test_transient_failures_are_retried(
    embedder: RemoteEmbedder, state: ServerState, modes: tuple[str, ...]
) -> None:
    state.fail(*modes)
    vectors = embedder.embed_documents(["retry me"])
    np.testing.assert_allclose(vectors[0], unit(hashed_vector("retry me", 32)), rtol=1e-6)
    assert state.count("embeddings") == len(modes) + 1


def test_retries_give_up_with_a_clear_error(embedder: RemoteEmbedder, state: ServerState) -> None:
    state.fail("503", "503", "503", "503", "503")
    with pytest.raises(RemoteServiceError, match="failed after 4 attempt.*HTTP 503") as info:
        embedder.embed_documents(["secret text"])
    assert info.value.status == 503
    assert "secret text" not in str(info.value)
    assert state.count("embeddings") == 4  # max_retries=3 by default


def test_timeouts_give_up_with_a_clear_error(base_url: str, state: ServerState) -> None:
    emb = RemoteEmbedder(
        base_url, "m", max_tokens=128, timeout_s=0.2, max_retries=1, backoff_s=0.01
    )
    state.slow_s = 0.6
    state.fail("slow", "slow")
    try:
        with pytest.raises(RemoteServiceError, match="timed out after 2 attempt"):
            emb.embed_documents(["x"])
    finally:
        emb.close()
        state.slow_s = 1.0


@pytest.mark.parametrize("status", ["400", "404"])
def test_client_errors_are_not_retried(
    embedder: RemoteEmbedder, state: ServerState, status: str
) -> None:
    state.fail(status)
    with pytest.raises(RemoteServiceError, match=f"refused: HTTP {status}") as info:
        embedder.embed_documents(["x"])
    assert info.value.status == int(status)
    assert state.count("embeddings") == 1


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed", "not JSON"),
        ("shape", "malformed embeddings response.*data"),
        ("short", "1 embeddings for 2 inputs"),
        ("wrong-dim", "31 dimensions.*configured for 32"),
    ],
)
def test_bad_answers_fail_at_once_with_a_clear_error(
    base_url: str, state: ServerState, mode: str, message: str
) -> None:
    emb = RemoteEmbedder(base_url, "m", max_tokens=128, dim=32, backoff_s=0.01)
    state.fail(mode)
    try:
        with pytest.raises(RemoteServiceError, match=message):
            emb.embed_documents(["first text", "second text"])
        assert state.count("embeddings") == 1
    finally:
        emb.close()


def test_connection_refused_is_retried_then_reported(state: ServerState) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    emb = RemoteEmbedder(url, "m", max_tokens=128, dim=8, max_retries=2, backoff_s=0.01)
    try:
        with pytest.raises(RemoteServiceError, match="failed after 3 attempt.*ConnectError"):
            emb.embed_documents(["x"])
    finally:
        emb.close()


def test_retry_after_is_honoured(embedder: RemoteEmbedder, state: ServerState) -> None:
    state.fail("429:1")
    started = time.monotonic()
    embedder.embed_documents(["x"])
    assert time.monotonic() - started >= 1.0
    assert state.count("embeddings") == 2


def test_api_key_is_sent_as_a_bearer_token(base_url: str, state: ServerState) -> None:
    emb = RemoteEmbedder(base_url, "m", max_tokens=128, api_key="sk-test")
    try:
        emb.embed_documents(["x"])
    finally:
        emb.close()
    assert state.headers[0]["authorization"] == "Bearer sk-test"


def test_environment_selects_the_remote_embedder(
    base_url: str, state: ServerState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAGENT_EMBED_PROVIDER", "openai")
    monkeypatch.setenv("RAGENT_EMBED_BASE_URL", base_url)
    monkeypatch.setenv("RAGENT_EMBED_MODEL", "served-model")
    monkeypatch.setenv("RAGENT_EMBED_MAX_TOKENS", "130")
    monkeypatch.setenv("RAGENT_EMBED_API_KEY", "sk-env")
    settings = load_settings()
    assert settings.embed.api_key is not None
    assert settings.embed.api_key.get_secret_value() == "sk-env"
    assert "sk-env" not in repr(settings)
    resources = build_resources(settings)
    embedder = resources.embedder
    try:
        assert isinstance(embedder, RemoteEmbedder)
        assert (embedder.model_name, embedder.dim) == ("served-model", 32)  # dim probed
        assert resources.retriever.embedder is embedder
        assert build_ingestor(resources).chunk_tokens == 128  # window 130 less [CLS]/[SEP]
        embedder.embed_query("hello")
        assert state.requests[-1][1]["model"] == "served-model"
        assert state.headers[-1]["authorization"] == "Bearer sk-env"
    finally:
        embedder.close()


def test_remote_provider_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_EMBED_PROVIDER", "openai")
    monkeypatch.setenv("RAGENT_EMBED_BASE_URL", "http://127.0.0.1:1/v1")
    with pytest.raises(SettingsError, match="max_tokens is required"):
        load_settings()
    monkeypatch.setenv("RAGENT_EMBED_PROVIDER", "local")
    monkeypatch.setenv("RAGENT_EMBED_DIM", "768")
    with pytest.raises(SettingsError, match="come from the local model"):
        load_settings()

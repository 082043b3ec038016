"""Shared fixtures. Unit tests never touch the network: a guard refuses non-loopback sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.tokens import ApproxCounter
from app.resources import Resources, use_resources
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.retriever import HybridRetriever
from app.settings import Settings, load_settings
from app.tools import default_registry
from app.tools.ratelimit import storage_for
from tests import engines
from tests.fakes import HashEmbedder

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if (
        isinstance(host, str)
        and host not in {"127.0.0.1", "::1", "localhost"}
        and not (self.family == socket.AF_UNIX)
    ):
        raise RuntimeError(f"network access in tests is forbidden: {address!r}")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(scope="session")
def elasticsearch_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Elasticsearch for the session: ``{"ELASTICSEARCH_URL": ...}``."""
    with engines.running("elasticsearch", tmp_path_factory.mktemp("elasticsearch")) as env:
        yield env


@pytest.fixture(scope="session")
def weaviate_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Weaviate for the session: ``{"WEAVIATE_URL": ..., "WEAVIATE_GRPC_PORT": ...}``."""
    with engines.running("weaviate", tmp_path_factory.mktemp("weaviate")) as env:
        yield env


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """In-process tool rate-limit counters are per process: each test starts from zero."""
    yield
    storage_for("memory://").reset()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in __import__("os").environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path / "data"))
    return load_settings()


@pytest.fixture
def index(settings: Settings) -> Iterator[EmbeddedIndex]:
    idx = EmbeddedIndex(settings.data_dir / "index.sqlite", dim=HashEmbedder.DIM)
    yield idx
    idx.close()


@pytest.fixture
def resources(settings: Settings, index: EmbeddedIndex) -> Iterator[Resources]:
    """Real engines with a fast deterministic embedder and the offline answerer."""
    embedder = HashEmbedder()
    res = Resources(
        settings=settings,
        chat_model=ExtractiveAnswerer(),
        embedder=embedder,
        retriever=HybridRetriever(
            embedder=embedder,
            vectors=EmbeddedVectorIndex(index),
            keywords=EmbeddedKeywordIndex(index),
        ),
        writer=index,
        tools=default_registry(),
        counter=ApproxCounter(),
    )
    with use_resources(res):
        yield res


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the real-model tier out unless the marker expression names it.

    It runs alone (``pytest -m realmodel tests/realmodel``, which ``scripts/test.sh`` does
    after the rest): a model decoding on the CPU slows to a crawl beside other tests.
    """
    if "realmodel" in (config.option.markexpr or ""):
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        (left if item.get_closest_marker("realmodel") else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept

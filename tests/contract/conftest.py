"""Backends for the index contract: embedded, and real Elasticsearch and Weaviate.

The live engines come from the session fixtures ``elasticsearch_env`` and ``weaviate_env``
(tests/engines.py): ``scripts/engines.sh`` starts them, unless ``ELASTICSEARCH_URL`` (and
optional ``ELASTICSEARCH_API_KEY``) or ``WEAVIATE_URL`` (with ``WEAVIATE_GRPC_PORT`` and
optional ``WEAVIATE_API_KEY``) name running servers. Each test gets its own index or
collection, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.protocols import KeywordIndex, Vector, VectorIndex
from app.retrieval.types import Chunk, DocumentRecord
from tests.fakes import HashEmbedder

EMB = HashEmbedder()

_real_connect = socket.socket.connect


def _configured_addresses() -> set[str]:
    """Loopback plus every address the configured servers' host names resolve to."""
    allowed = {"127.0.0.1", "::1", "localhost"}
    for var in ("ELASTICSEARCH_URL", "WEAVIATE_URL"):
        host = urlparse(os.environ.get(var, "")).hostname
        if host:
            allowed.add(host)
            allowed.update(str(info[4][0]) for info in socket.getaddrinfo(host, None))
    return allowed


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like the root guard, but the servers named in the environment may be reached."""
    allowed = _configured_addresses()

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family != socket.AF_UNIX and host not in allowed:
            raise RuntimeError(f"network access in tests is forbidden: {address!r}")
        _real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@dataclass
class KeywordBackend:
    name: str
    index: KeywordIndex
    replace: Callable[[str, str, Sequence[Chunk]], None]


@dataclass
class VectorBackend:
    name: str
    index: VectorIndex
    replace: Callable[[str, str, Sequence[Chunk], Vector], None]


def _record(tenant_id: str, doc_id: str) -> DocumentRecord:
    return DocumentRecord(tenant_id, doc_id, f"{doc_id}.md", uuid.uuid4().hex, EMB.model_name)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedIndex]:
    index = EmbeddedIndex(tmp_path / "contract.sqlite", dim=EMB.dim)
    yield index
    index.close()


@pytest.fixture(params=["embedded", "elasticsearch"])
def keyword_backend(request: pytest.FixtureRequest) -> Iterator[KeywordBackend]:
    if request.param == "embedded":
        index = request.getfixturevalue("embedded")

        def replace(tenant_id: str, doc_id: str, chunks: Sequence[Chunk]) -> None:
            vectors = EMB.embed_documents([c.text for c in chunks])
            index.replace_document(_record(tenant_id, doc_id), chunks, vectors)

        yield KeywordBackend("embedded", EmbeddedKeywordIndex(index), replace)
        return
    url = request.getfixturevalue("elasticsearch_env")["ELASTICSEARCH_URL"]
    from app.retrieval.remote.elastic import ElasticKeywordIndex, connect

    client = connect(url, api_key=os.environ.get("ELASTICSEARCH_API_KEY"))
    es = ElasticKeywordIndex(client, f"ragent-contract-{uuid.uuid4().hex[:12]}", replicas=0)
    try:
        yield KeywordBackend("elasticsearch", es, es.replace_document)
    finally:
        es.drop()
        client.close()


@pytest.fixture
def embedded_hnsw(tmp_path: Path) -> Iterator[EmbeddedIndex]:
    """The embedded engine forced onto its HNSW path for every dense search."""
    index = EmbeddedIndex(tmp_path / "hnsw.sqlite", dim=EMB.dim, ann_threshold=1, exact_limit=0)
    yield index
    index.close()


@pytest.fixture(params=["embedded", "embedded-hnsw", "weaviate"])
def vector_backend(request: pytest.FixtureRequest) -> Iterator[VectorBackend]:
    if request.param.startswith("embedded"):
        hnsw = request.param == "embedded-hnsw"
        index = request.getfixturevalue("embedded_hnsw" if hnsw else "embedded")

        def replace(tenant_id: str, doc_id: str, chunks: Sequence[Chunk], vectors: Vector) -> None:
            index.replace_document(_record(tenant_id, doc_id), chunks, vectors)
            if hnsw:
                assert index.build_graph() >= index.count()

        yield VectorBackend(request.param, EmbeddedVectorIndex(index), replace)
        return
    env = request.getfixturevalue("weaviate_env")
    from app.retrieval.remote.weaviate import WeaviateVectorIndex, connect

    client = connect(
        env["WEAVIATE_URL"],
        grpc_port=int(env.get("WEAVIATE_GRPC_PORT", "50051")),
        api_key=os.environ.get("WEAVIATE_API_KEY"),
    )
    wv = WeaviateVectorIndex(client, f"RagentContract{uuid.uuid4().hex[:12]}", dim=EMB.dim)
    try:
        yield VectorBackend("weaviate", wv, wv.replace_document)
    finally:
        wv.drop()
        client.close()

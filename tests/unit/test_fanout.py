"""Writing to remote engines: order of writes, records last, and the factory's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from app.resources import build_resources
from app.retrieval.embedded import EmbeddedIndex
from app.retrieval.fanout import FanOutWriter
from app.retrieval.protocols import DocumentWriter
from app.retrieval.types import Chunk, DocumentRecord
from app.settings import Settings, SettingsError

RECORD = DocumentRecord("t1", "d1", "a.md", "h1", "m")
CHUNK = Chunk("c1", "d1", "t1", "a.md", "text", (0, 4), "x")


class Engine:
    def __init__(self, log: list[str], name: str, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    def replace_document(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], *rest: object
    ) -> int:
        self.log.append(f"{self.name}.replace {tenant_id}/{doc_id} {len(chunks)}")
        if self.fail:
            raise ConnectionError(f"{self.name} down")
        return len(chunks)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        self.log.append(f"{self.name}.delete {tenant_id}/{doc_id}")
        return 1


@pytest.fixture
def records(tmp_path: Path) -> EmbeddedIndex:
    return EmbeddedIndex(tmp_path / "records.sqlite", dim=4)


def test_replace_writes_both_engines_then_the_record(records: EmbeddedIndex) -> None:
    log: list[str] = []
    writer = FanOutWriter(records=records, vectors=Engine(log, "vec"), keywords=Engine(log, "kw"))
    assert isinstance(writer, DocumentWriter)
    writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert log == ["vec.replace t1/d1 1", "kw.replace t1/d1 1"]
    assert writer.document("t1", "d1") == DocumentRecord(
        "t1", "d1", "a.md", "h1", "m", chunk_ids=("c1",)
    )
    assert records.count() == 0  # chunks live in the remote engines only


def test_a_failed_engine_leaves_no_record_so_the_next_ingest_redoes_it(
    records: EmbeddedIndex,
) -> None:
    log: list[str] = []
    writer = FanOutWriter(
        records=records, vectors=Engine(log, "vec"), keywords=Engine(log, "kw", fail=True)
    )
    with pytest.raises(ConnectionError):
        writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert writer.document("t1", "d1") is None


def test_delete_forgets_the_record_before_the_engines(records: EmbeddedIndex) -> None:
    log: list[str] = []
    writer = FanOutWriter(records=records, vectors=Engine(log, "vec"), keywords=Engine(log, "kw"))
    writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert writer.delete_document("t1", "d1") == 1
    assert writer.documents("t1") == []
    assert log[-2:] == ["vec.delete t1/d1", "kw.delete t1/d1"]


def test_factory_wires_remote_engines_together(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.retrieval.elastic as elastic
    import app.retrieval.weaviate as weaviate

    class Client:
        def close(self) -> None:
            pass

    seen: list[str] = []
    monkeypatch.setattr(weaviate, "connect", lambda url, **kw: seen.append(url) or Client())
    monkeypatch.setattr(elastic, "connect", lambda url, **kw: seen.append(url) or Client())
    monkeypatch.setattr(weaviate, "WeaviateVectorIndex", lambda client, dim: ("weaviate", dim))
    monkeypatch.setattr(elastic, "ElasticKeywordIndex", lambda client: ("elastic",))
    remote = settings.model_copy(deep=True)
    remote.retrieval.vector_backend = "weaviate"
    remote.retrieval.keyword_backend = "elasticsearch"
    remote.retrieval.weaviate_url = "http://127.0.0.1:8080"
    remote.retrieval.elasticsearch_url = "http://127.0.0.1:9200"
    resources = build_resources(remote)
    assert seen == ["http://127.0.0.1:8080", "http://127.0.0.1:9200"]
    assert resources.retriever.vectors == ("weaviate", 384)
    assert resources.retriever.keywords == ("elastic",)
    assert isinstance(resources.writer, FanOutWriter)
    assert resources.retriever.concurrent  # network-bound engines are searched in parallel
    embedded = build_resources(settings).retriever
    assert not embedded.concurrent  # one lock: both searches in one worker thread


def test_factory_refuses_mixing_embedded_and_remote(settings: Settings) -> None:
    mixed = settings.model_copy(deep=True)
    mixed.retrieval.vector_backend = "weaviate"
    mixed.retrieval.weaviate_url = "http://127.0.0.1:8080"
    with pytest.raises(SettingsError, match="use Weaviate and Elasticsearch together"):
        build_resources(mixed)

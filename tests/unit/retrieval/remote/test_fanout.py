"""Writing to remote engines: order of writes, records last, and the factory's wiring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from app.resources import build_resources
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.protocols import DocumentWriter
from app.retrieval.remote.fanout import FanOutWriter
from app.retrieval.types import Chunk, DocumentRecord
from app.settings import Settings, SettingsError

RECORD = DocumentRecord("t1", "d1", "a.md", "h1", "m")
CHUNK = Chunk("c1", "d1", "t1", "a.md", "text", (0, 4), "x")


class Engine:
    """Records the phases it is asked for; ``fail`` names the phase that raises."""

    def __init__(self, log: list[str], name: str, fail: str = "") -> None:
        self.log, self.name, self.fail = log, name, fail

    def _step(self, phase: str, detail: str) -> None:
        self.log.append(f"{self.name}.{phase} {detail}")
        if phase == self.fail:
            raise ConnectionError(f"{self.name} down")

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        self._step("begin", f"{tenant_id}/{doc_id}")

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], *rest: object
    ) -> None:
        self._step("write", f"{tenant_id}/{doc_id} {len(chunks)}")

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        self._step("commit", f"{tenant_id}/{doc_id} {','.join(chunk_ids)}")

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        self._step("stale", f"{tenant_id}/{doc_id}")
        return 0

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        self._step("delete", f"{tenant_id}/{doc_id}")
        return 1


@pytest.fixture
def records(tmp_path: Path) -> EmbeddedIndex:
    return EmbeddedIndex(tmp_path / "records.sqlite", dim=4)


def test_replace_writes_both_engines_then_the_record(records: EmbeddedIndex) -> None:
    log: list[str] = []
    writer = FanOutWriter(records=records, vectors=Engine(log, "vec"), keywords=Engine(log, "kw"))
    assert isinstance(writer, DocumentWriter)
    writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert log == [
        "vec.begin t1/d1",
        "kw.begin t1/d1",
        "vec.write t1/d1 1",
        "kw.write t1/d1 1",
        "vec.commit t1/d1 c1",
        "kw.commit t1/d1 c1",
        "vec.stale t1/d1",
        "kw.stale t1/d1",
    ]
    assert writer.document("t1", "d1") == DocumentRecord(
        "t1", "d1", "a.md", "h1", "m", chunk_ids=("c1",)
    )
    assert records.count() == 0  # chunks live in the remote engines only


@pytest.mark.parametrize("phase", ["begin", "write", "commit"])
def test_a_failed_engine_leaves_no_record_so_the_next_ingest_redoes_it(
    records: EmbeddedIndex, phase: str
) -> None:
    log: list[str] = []
    writer = FanOutWriter(
        records=records, vectors=Engine(log, "vec"), keywords=Engine(log, "kw", fail=phase)
    )
    with pytest.raises(ConnectionError):
        writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert writer.document("t1", "d1") is None
    # Nothing after the failed phase ran: no engine committed a version the other lacks.
    assert log[-1].startswith(f"kw.{phase} t1/d1")


def test_stale_chunks_left_by_a_failed_cleanup_do_not_fail_the_replace(
    records: EmbeddedIndex, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    writer = FanOutWriter(
        records=records, vectors=Engine(log, "vec", fail="stale"), keywords=Engine(log, "kw")
    )
    writer.replace_document(RECORD, [CHUNK], np.zeros((1, 4), np.float32))
    assert writer.document("t1", "d1") is not None  # both engines committed
    assert log[-1] == "kw.stale t1/d1"  # the other engine was still cleaned
    assert "stay hidden in the vector engine: ConnectionError" in caplog.text


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
    import app.retrieval.remote.elastic as elastic
    import app.retrieval.remote.weaviate as weaviate

    class Client:
        def close(self) -> None:
            pass

    seen: list[str] = []
    monkeypatch.setattr(weaviate, "connect", lambda url, **kw: seen.append(url) or Client())
    monkeypatch.setattr(elastic, "connect", lambda url, **kw: seen.append(url) or Client())
    built: list[object] = []

    class Index:
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append((args[1:], kwargs))
            self.client = args[0]

        def count(self, flt: object = None, *, limit: int | None = None) -> int:
            return 7

    monkeypatch.setattr(weaviate, "WeaviateVectorIndex", Index)
    monkeypatch.setattr(elastic, "ElasticKeywordIndex", Index)
    remote = settings.model_copy(deep=True)
    remote.retrieval.vector_backend = "weaviate"
    remote.retrieval.keyword_backend = "elasticsearch"
    remote.retrieval.weaviate_url = "http://127.0.0.1:8080"
    remote.retrieval.elasticsearch_url = "http://127.0.0.1:9200"
    resources = build_resources(remote)
    assert seen == []  # nothing is reached at start-up: an engine may be down then
    assert resources.retriever.vectors.count() == resources.retriever.keywords.count() == 7
    assert seen == ["http://127.0.0.1:8080", "http://127.0.0.1:9200"]
    assert built == [
        (("RagentChunk",), {"dim": 384}),
        (("ragent-chunks",), {"shards": 1, "replicas": 1}),
    ]
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

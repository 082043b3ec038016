"""Ingestion state shared in a real Redis by every worker: document records and signatures.

Two ingestors with data dirs of their own stand for two ingestion workers (or one
restarted): what the first indexed, the second skips as unchanged; a near-duplicate of
what the first saw, the second drops; a pruned document leaves nothing behind in Redis.
The remote engines are a shared in-memory stand-in that keeps each document's chunk ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_lib

from app.ingest.dedup import Deduplicator
from app.ingest.factory import build_ingestor
from app.ingest.ids import stable_id
from app.ingest.pipeline import IngestOptions, Ingestor
from app.ingest.redis_signatures import RedisSignatureStore, signature_key
from app.ingest.signatures import SignatureStore
from app.llm.tokens import ApproxCounter
from app.resources import Resources, build_resources
from app.retrieval.remote.fanout import FanOutWriter
from app.retrieval.remote.records import RedisRecords, records_key
from app.retrieval.types import Chunk, DocumentRecord
from app.settings import Settings, SettingsError
from tests.fakes import HashEmbedder
from tests.servers import RedisServer, redis_server

pytestmark = pytest.mark.integration

OPTS = IngestOptions(tenant_id="t1", workers=0, progress=False)
WAL = (
    "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of "
    "1000 pages. Applications can also run checkpoints by hand. "
)


class Engines:
    """Both remote engines of a deployment: each document's committed chunk ids."""

    def __init__(self) -> None:
        self.committed: dict[tuple[str, str], list[str]] = {}
        self.writes = 0

    def begin_replace(self, tenant_id: str, doc_id: str) -> None:
        pass

    def write_generation(
        self, tenant_id: str, doc_id: str, chunks: Sequence[Chunk], *rest: object
    ) -> None:
        self.writes += 1

    def commit(self, tenant_id: str, doc_id: str, chunk_ids: Sequence[str]) -> None:
        self.committed[(tenant_id, doc_id)] = list(chunk_ids)

    def delete_stale(self, tenant_id: str, doc_id: str, generation: str) -> int:
        return 0

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        return len(self.committed.pop((tenant_id, doc_id), []))


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def _worker(url: str, engines: Engines) -> Ingestor:
    """A worker's ingestor: its own objects and connections, the shared Redis and engines."""
    return Ingestor(
        writer=FanOutWriter(records=RedisRecords(url), vectors=engines, keywords=engines),
        embedder=HashEmbedder(),
        counter=ApproxCounter(),
        chunk_tokens=60,
        chunk_overlap=8,
        max_file_bytes=100_000,
        signatures=RedisSignatureStore(url),
    )


def _doc_id(path: Path) -> str:
    return stable_id("t1", str(path.resolve()))


def test_a_second_worker_skips_a_document_the_first_indexed(
    redis: RedisServer, tmp_path: Path
) -> None:
    engines = Engines()
    (tmp_path / "a.md").write_text("# WAL\n\n" + WAL * 6)
    first = _worker(redis.url, engines).ingest([tmp_path / "a.md"], OPTS)
    assert (first.documents, first.unchanged) == (1, 0)
    writes = engines.writes

    second = _worker(redis.url, engines).ingest([tmp_path / "a.md"], OPTS)
    assert (second.documents, second.chunks, second.unchanged) == (0, 0, 1)
    assert engines.writes == writes  # nothing written to the engines again
    record = RedisRecords(redis.url).document("t1", _doc_id(tmp_path / "a.md"))
    assert (
        record is not None
        and list(record.chunk_ids) == engines.committed[("t1", _doc_id(tmp_path / "a.md"))]
    )


def test_a_near_duplicate_of_what_the_first_worker_saw_is_dropped_by_the_second(
    redis: RedisServer, tmp_path: Path
) -> None:
    engines = Engines()
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("# WAL\n\n" + WAL * 6)
    assert _worker(redis.url, engines).ingest([a], OPTS).documents == 1
    # The second worker finds the first's signatures of a.md, without parsing it again.
    scheme = Deduplicator().scheme
    with RedisSignatureStore(redis.url).open() as table:
        file_hash = hashlib.sha256(a.read_bytes()).hexdigest()
        stored = table.get("t1", _doc_id(a), file_hash, scheme)
    assert stored and stored[0].item_id == _doc_id(a) and len(stored) > 1

    b.write_text("# WAL\n\n" + WAL * 5 + WAL.replace("hand", "cron"))
    second = _worker(redis.url, engines).ingest([tmp_path], OPTS)
    assert (second.documents, second.unchanged, second.duplicates) == (0, 1, 1)
    (dropped,) = second.dropped
    assert Path(dropped["source"]).name == "b.md"
    assert dropped["reason"].startswith(f"duplicate of {a} (near:")


def test_a_pruned_document_leaves_no_record_nor_signature(
    redis: RedisServer, tmp_path: Path
) -> None:
    engines = Engines()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# WAL\n\n" + WAL * 6)
    (docs / "d.txt").write_text("VACUUM reclaims storage occupied by dead tuples. " * 5)
    assert _worker(redis.url, engines).ingest([docs], OPTS).documents == 2
    client = redis_lib.Redis.from_url(redis.url)
    gone = _doc_id(docs / "a.md")
    assert client.exists(signature_key("t1", gone))
    assert client.hexists(records_key("t1"), gone)

    (docs / "a.md").unlink()
    pruned = _worker(redis.url, engines).ingest([docs], replace(OPTS, prune=True))
    assert pruned.pruned == 1
    assert not client.exists(signature_key("t1", gone))
    assert not client.hexists(records_key("t1"), gone)
    assert ("t1", gone) not in engines.committed
    kept = _doc_id(docs / "d.txt")
    assert client.exists(signature_key("t1", kept)) and client.hexists(records_key("t1"), kept)
    assert [r.doc_id for r in RedisRecords(redis.url).documents("t1")] == [kept]
    client.close()


def test_keys_keep_tenants_apart(redis: RedisServer) -> None:
    records = RedisRecords(redis.url)
    records.put_record(DocumentRecord("a:b", "c", "x.md", "h", "m"), ["k1"])
    assert records.document("a", "b:c") is None
    assert records.documents("a") == []
    assert records.document("a:b", "c") == DocumentRecord(
        "a:b", "c", "x.md", "h", "m", chunk_ids=("k1",)
    )
    assert signature_key("a:b", "c") != signature_key("a", "b:c")


def test_the_setting_picks_redis_and_the_embedded_profile_keeps_sqlite(
    redis: RedisServer, settings: Settings, resources: Resources
) -> None:
    assert isinstance(build_ingestor(resources).signatures, SignatureStore)
    shared = settings.model_copy(deep=True)
    shared.ingest.state_backend = "redis"
    shared.server.redis_url = redis.url  # the default Redis of the state
    shared.retrieval.vector_backend = "weaviate"
    shared.retrieval.keyword_backend = "elasticsearch"
    shared.retrieval.weaviate_url = "http://127.0.0.1:9"  # never reached in this test
    shared.retrieval.elasticsearch_url = "http://127.0.0.1:9"
    built = build_resources(shared)
    RedisRecords(redis.url).put_record(DocumentRecord("t1", "d1", "a.md", "h", "m"), ["c1"])
    assert built.writer.document("t1", "d1") is not None  # records read from Redis
    ingestor = build_ingestor(replace(resources, settings=shared))
    assert isinstance(ingestor.signatures, RedisSignatureStore)
    assert not (shared.data_dir / "dedup.sqlite").exists()


def test_the_setting_refuses_a_url_that_is_not_redis_or_no_redis(
    settings: Settings, resources: Resources
) -> None:
    with pytest.raises(ValueError, match="state_redis_url must start with redis://"):
        type(settings.ingest).model_validate({"state_redis_url": "http://redis:6379"})
    alone = settings.model_copy(deep=True)
    alone.ingest.state_backend = "redis"
    alone.server.redis_url = None
    with pytest.raises(SettingsError, match="needs ingest.state_redis_url or server.redis_url"):
        build_ingestor(replace(resources, settings=alone))
    alone.ingest.state_redis_url = "redis://127.0.0.1:9/0"  # its own Redis; not reached
    assert isinstance(
        build_ingestor(replace(resources, settings=alone)).signatures, RedisSignatureStore
    )

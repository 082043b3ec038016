"""The API's state on a real Redis: token buckets shared by replicas, records, event logs,
keys and the thread index."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.server import api_keys
from app.server.shared_state import RedisState
from app.server.thread_index import RedisThreadIndex
from tests.servers import RedisServer, redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def test_a_bucket_is_shared_by_every_replica(redis: RedisServer) -> None:
    one, two = RedisState(redis.url), RedisState(redis.url)
    try:
        taken = [await (one if i % 2 else two).take("key:shared", 60.0, 3) for i in range(4)]
        assert [t[0] for t in taken] == [True, True, True, False]
        assert 59 < taken[3][1] <= 60 and taken[2][2] == 0
        assert (await one.take("key:other", 60.0, 3))[0]
    finally:
        await one.close()
        await two.close()


async def test_records_and_event_logs(redis: RedisServer) -> None:
    writer, reader = RedisState(redis.url), RedisState(redis.url)
    try:
        assert await writer.set("idem:x", "running", 60, only_new=True)
        assert not await reader.set("idem:x", "again", 60, only_new=True)
        assert await reader.get("idem:x") == "running"
        await writer.delete("idem:x")
        assert await reader.get("idem:x") is None

        waiting = asyncio.create_task(reader.read("run_1", 0, 5))
        await asyncio.sleep(0.05)
        await writer.append("run_1", [(1, "first")], 60)
        assert await waiting == [(1, "first")]
        await writer.append("run_1", [(2, "second")], 60)
        await writer.append("run_1", [(3, "[DONE]")], 60)
        assert await reader.read("run_1", 1, 0) == [(2, "second"), (3, "[DONE]")]
        assert await reader.read("run_1", 3, 0.05) == []
    finally:
        await writer.close()
        await reader.close()


def test_key_store_on_redis(redis: RedisServer) -> None:
    store = api_keys.RedisKeyStore(redis.url)
    try:
        record, key = api_keys.create(store, tenant_id="acme", user_id="ann", groups=["ops"])
        assert api_keys.verify(store, key) == record
        assert [r.key_id for r in store.list()] == [record.key_id]
        assert store.revoke(record.key_id)
        assert api_keys.verify(store, key) is None
        assert not store.revoke("ffffffffffff")
    finally:
        store.close()


async def test_the_server_checks_a_key_on_redis_without_a_thread(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = api_keys.RedisKeyStore(redis.url)
    record, key = api_keys.create(store, tenant_id="acme", user_id="bob")

    def no_hop(*args: object, **kwargs: object) -> None:
        raise AssertionError("the key was looked up in a worker thread")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(asyncio, "to_thread", no_hop)
            assert await store.afind(record.key_id) == store.find(record.key_id)
            assert await api_keys.averify(store, key) == record
            assert await api_keys.averify(store, key[:-1] + "x") is None  # wrong secret
            assert await store.afind("ffffffffffff") is None
        store.revoke(record.key_id)  # by the CLI's synchronous client
        assert await api_keys.averify(store, key) is None
    finally:
        await store.aclose()


async def test_thread_index_on_redis(redis: RedisServer) -> None:
    index = RedisThreadIndex(redis.url)
    try:
        await index.touch("acme/ann", "t1", "First question")
        await asyncio.sleep(0.01)
        await index.touch("acme/ann", "t2", "Second question")
        await index.touch("acme/ann", "t1", "ignored: the title stays")
        found = await index.list("acme/ann", limit=10, before=None)
        assert [(t.thread_id, t.title) for t in found] == [
            ("t1", "First question"),
            ("t2", "Second question"),
        ]
        older = await index.list("acme/ann", limit=10, before=found[0].updated_at)
        assert [t.thread_id for t in older] == ["t2"]
        assert await index.list("acme/bob", limit=10, before=None) == []
        assert await index.remove("acme/ann", "t1")
        assert not await index.remove("acme/ann", "t1")
        assert await index.get("acme/ann", "t1") is None
    finally:
        await index.close()

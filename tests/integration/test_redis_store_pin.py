"""Pin how langgraph's Redis store behaves on our Redis (RediSearch 2.10, RedisJSON 2.8).

langgraph-checkpoint-redis 0.5.2 with redisvl 0.28 stores each item as JSON with its
namespace joined by "." in a full-text ``prefix`` field, and finds items with a query on
that field. What that gives today, pinned so that an upgrade that changes it is noticed:

- ``AsyncRedisStore`` cannot be created at all (redisvl rejects its async client).
- ``RedisStore.get()`` finds items only in a one-level namespace of one plain word; with
  two or more levels (or any punctuation) it returns None, because the escaped phrase it
  queries matches under query dialect 1 but not under dialect 2, which redisvl sends.
- ``search()`` (with or without a filter) does find items in nested namespaces.
- Namespaces match as full text, not exactly. ``search()`` matches the last label as a
  word prefix, and ``put()`` replaces the same key in a namespace whose label differs only
  in case or word ending. So per-user namespaces such as ``("memories", tenant, user)``
  are NOT isolated from each other on this store; app/memory/namespaces.py encodes every
  label as a fixed-length digest for that reason (tests/integration/test_memory_stores.py).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import pytest
from langgraph.store.redis import AsyncRedisStore, RedisStore

from tests.integration.conftest import REDISVL_ASYNC_FACTORY
from tests.servers import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    with RedisStore.from_conn_string(redis_url) as s:
        s.setup()
        yield s


@pytest.fixture
def tenant() -> str:
    """A namespace label no other test uses (letters only: it must be one plain word)."""
    return "t" + "".join(c for c in uuid.uuid4().hex if c.isalpha()) + "x"


async def test_async_store_cannot_be_created(redis_url: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", REDISVL_ASYNC_FACTORY, DeprecationWarning)
        with pytest.raises(TypeError, match="SearchIndex requires a sync Redis client"):
            async with AsyncRedisStore.from_conn_string(redis_url):
                pass


def test_get_finds_items_in_a_one_level_namespace(store: RedisStore, tenant: str) -> None:
    store.put((tenant,), "k", {"text": "hello", "kind": "pref"})
    item = store.get((tenant,), "k")
    assert item is not None and item.value == {"text": "hello", "kind": "pref"}


@pytest.mark.parametrize("shape", ["two-levels", "three-levels", "punctuation"])
def test_get_misses_but_search_finds_other_namespaces(
    store: RedisStore, tenant: str, shape: str
) -> None:
    namespace = {
        "two-levels": ("prefs", tenant),
        "three-levels": ("memories", tenant, "local"),  # the shape of app.memory.namespaces
        "punctuation": (f"{tenant}-1",),
    }[shape]
    store.put(namespace, "k", {"text": "hello", "kind": "pref"})

    assert store.get(namespace, "k") is None

    for found in (store.search(namespace), store.search(namespace, filter={"kind": "pref"})):
        assert [(i.namespace, i.key, i.value["text"]) for i in found] == [(namespace, "k", "hello")]
    assert store.search(namespace, filter={"kind": "other"}) == []


def test_get_query_matches_only_in_dialect_1(store: RedisStore, tenant: str) -> None:
    """The mechanism behind the misses above, on the server itself."""
    store.put(("prefs", tenant), "k", {"text": "hello"})
    query = f'(@prefix:("prefs\\.{tenant}") @key:{{k}})'
    redis = store._redis

    def hits(dialect: int) -> int:
        return int(
            redis.execute_command("FT.SEARCH", "store", query, "NOCONTENT", "DIALECT", dialect)[0]
        )

    assert (hits(1), hits(2)) == (1, 0)


def test_user_namespaces_are_not_isolated(store: RedisStore, tenant: str) -> None:
    def put(user: str) -> None:
        store.put(("memories", tenant, user), "m", {"text": f"memory of {user}"})

    def seen_by(user: str) -> list[str]:
        return sorted(i.value["text"] for i in store.search(("memories", tenant, user)))

    for user in ("bob", "runner", "running", "the"):
        put(user)
    assert seen_by("bob") == ["memory of bob"]
    assert seen_by("the") == ["memory of the"]
    # search() matches the last label as a word prefix: "run" sees "runner" and "running".
    assert seen_by("run") == ["memory of runner", "memory of running"]
    assert seen_by("r") == ["memory of runner", "memory of running"]

    # put() replaces the item of another namespace whose label has the same stem or case.
    put("run")
    assert seen_by("running") == []
    assert seen_by("run") == ["memory of run", "memory of runner"]
    put("alice")
    put("Alice")
    assert seen_by("alice") == ["memory of Alice"]

"""Cursors and web page validators in a real Redis, shared by replicas with their own folders.

Replica A syncs; replica B, with a fresh data folder, reads on from A's cursor (only the
new rows) and sends A's validators (304s). A sync that dies mid-way leaves the cursor
where the last finished sync put it, for every replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis

from app.config.sources import WebSourceSettings
from app.resources import Resources
from app.settings import Settings
from app.sources.configured import settings_source
from app.sources.connector import Connector, SourceItem
from app.sources.cursors import RedisCursorStore
from app.sources.factory import cursor_store
from app.sources.locks import redis_locks
from app.sources.sync import SourceSync
from tests.servers import RedisServer, redis_server
from tests.sources import CREATE, TENANT, Crashing, articles, execute, make_sync
from tests.web_site import Site, serve, small_site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server: RedisServer
    with redis_server() as server:
        yield server.url


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@dataclasses.dataclass(frozen=True)
class Counted:
    """A source that remembers the ids of the items it listed."""

    inner: Connector
    listed: list[str]

    @property
    def name(self) -> str:
        return self.inner.name

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        with closing(self.inner.changed(cursor)) as items:
            for item in items:
                self.listed.append(item.item_id)
                yield item

    def ids(self) -> Iterator[str]:
        return self.inner.ids()


def _replica(resources: Resources, client: redis.Redis) -> SourceSync:
    """A replica's sync: the shared index, cursors and locks in Redis."""
    return dataclasses.replace(
        make_sync(resources), cursors=RedisCursorStore(client), locks=redis_locks(client)
    )


def _rows(first: int, last: int, hour: int) -> str:
    return ", ".join(
        f"({n}, 'Note {n}', 'entry {n}', NULL, NULL, '2026-01-01 {hour:02d}:{n:02d}:00')"
        for n in range(first, last + 1)
    )


def test_a_replica_with_a_fresh_folder_reads_on_from_the_shared_cursor(
    resources: Resources, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    source = dataclasses.replace(articles(url), lookback_s=0)
    execute(url, CREATE, f"INSERT INTO articles VALUES {_rows(1, 3, 10)}")
    a = _replica(resources, client)
    first = a.sync(source, tenant_id=TENANT)
    assert (first.indexed, first.cursor) == (3, "2026-01-01 10:03:00")

    execute(url, f"INSERT INTO articles VALUES {_rows(4, 5, 12)}")
    # A sync that dies mid-way moves no replica's cursor.
    with pytest.raises(ConnectionError):
        a.sync(Crashing(source, after=1), tenant_id=TENANT)
    state = RedisCursorStore(client).get(TENANT, "kb")
    assert state is not None and state.cursor == "2026-01-01 10:03:00"

    b = _replica(resources, redis.Redis.from_url(redis_url))
    listed: list[str] = []
    second = b.sync(Counted(source, listed), tenant_id=TENANT)
    # At or after A's cursor: its last row (unchanged, by its hash) and the new ones only;
    # a folder-local cursor read all five again.
    assert listed == ["3", "4", "5"]
    assert second.indexed + second.unchanged == 3 and second.indexed >= 1
    assert second.cursor == "2026-01-01 12:05:00"


def test_the_settings_put_cursors_and_validators_in_redis(
    settings: Settings, resources: Resources, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    source = WebSourceSettings(
        name="site",
        kind="web",
        seeds=["http://127.0.0.1/"],
        private_hosts=["127.0.0.1"],
        tenant_id=TENANT,
    )
    with serve(small_site()) as site:
        source = source.model_copy(update={"seeds": [site.url("/")]})

        def replica(folder: str) -> tuple[Settings, SourceSync]:
            configured = settings.model_copy(
                update={
                    "data_dir": tmp_path / folder,
                    "sources": [source],
                    "server": settings.server.model_copy(update={"redis_url": redis_url}),
                }
            )
            sync = dataclasses.replace(
                make_sync(resources),
                cursors=cursor_store(configured),
                locks=redis_locks(redis.Redis.from_url(redis_url)),
            )
            return configured, sync

        a_settings, a = replica("a")
        first = a.sync(settings_source(a_settings, source), tenant_id=TENANT)
        assert first.indexed >= 4
        b_settings, b = replica("b")
        again = b.sync(settings_source(b_settings, source), tenant_id=TENANT)
        assert (again.indexed, again.unchanged) == (0, first.indexed)
        assert _statuses(site, "/kettle.html") == [200, 304]  # B sent A's validators
    for folder in ("a", "b"):
        assert not (tmp_path / folder / "sources.sqlite").exists()


def _statuses(site: Site, path: str) -> list[int]:
    return [seen.status for seen in site.seen(path)]

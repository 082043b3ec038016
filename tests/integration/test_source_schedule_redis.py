"""Two replicas scheduling the same source on one real Redis: never two syncs at once."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis

from app.config.sources import SourceSettings, SqlSourceSettings
from app.resources import Resources
from app.settings import Settings
from app.sources.configured import configured_source
from app.sources.connector import Connector, SourceItem
from app.sources.locks import redis_locks
from app.sources.runner import SourceRunner
from app.sources.schedule import SourceSyncs
from app.sources.status import RedisStatusStore
from tests.servers import RedisServer, redis_server
from tests.sources import CREATE, TENANT, execute, make_sync

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server: RedisServer
    with redis_server() as server:
        yield server.url


@dataclasses.dataclass(frozen=True)
class Slow:
    """A source that takes ``delay_s`` per item: syncs long enough to overlap if allowed."""

    inner: Connector
    delay_s: float

    @property
    def name(self) -> str:
        return self.inner.name

    def changed(self, cursor: str | None) -> Generator[SourceItem, None, None]:
        with closing(self.inner.changed(None)) as items:  # every item, every time
            for item in items:
                time.sleep(self.delay_s)
                yield item

    def ids(self) -> Iterator[str]:
        return self.inner.ids()


def _replica(
    resources: Resources, settings: Settings, url: str, redis_url: str, holder: str
) -> SourceSyncs:
    client = redis.Redis.from_url(redis_url)
    runner = SourceRunner(
        sync=dataclasses.replace(make_sync(resources), locks=redis_locks(client)),
        status=RedisStatusStore(client),
        holder=holder,
    )

    def connect(cfg: SourceSettings) -> Connector:
        return Slow(configured_source(cfg, data_dir=settings.data_dir), delay_s=0.1)

    source = SqlSourceSettings(
        name="kb",
        url=url,
        query="SELECT id, title, body, updated_at FROM articles",
        id_column="id",
        title_column="title",
        text_columns=["body"],
        updated_at_column="updated_at",
        tenant_id=TENANT,
        every_s=1,
    )
    configured = settings.model_copy(update={"sources": [source]})
    return SourceSyncs(configured, lambda: runner, tick_s=0.02, connect=connect)


async def test_two_replicas_never_sync_one_source_at_once(
    resources: Resources, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    rows = ", ".join(
        f"({n}, 'Note {n}', 'entry {n}', NULL, NULL, '2026-01-01 10:{n:02d}:00')"
        for n in range(1, 6)
    )
    execute(url, CREATE, f"INSERT INTO articles VALUES {rows}")
    replicas = [_replica(resources, settings, url, redis_url, h) for h in ("a", "b")]
    for replica in replicas:
        replica.start()
    await asyncio.sleep(6)
    for replica in replicas:
        await replica.close()
    runs = RedisStatusStore(redis.Redis.from_url(redis_url)).runs(TENANT, "kb")
    assert len(runs) >= 3, runs
    assert all(run["error"] is None for run in runs)
    for before, after in zip(runs, runs[1:], strict=False):
        # each run started after the one before had ended, and a full interval later
        assert after["started_at"] >= before["finished_at"] + 1, (before, after)
    assert all(run["seconds"] >= 0.5 for run in runs)  # five items of 0.1 s each

"""The semantic answer cache through the compiled agent, on SQLite and on a real Redis.

The engines are real (the embedded index, the answer cache's SQLite file or RediSearch);
the model is the offline answerer, which cites what it quotes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from app.cache import CachedAnswer, Scope, SemanticCache, build_store
from app.context import Context
from app.graphs.agent import compile_agent
from app.ingest.pipeline import IngestOptions
from app.resources import Resources, use_resources
from app.settings import Settings
from app.turns import Answer, ask
from tests.fakes import small_ingestor
from tests.servers import RedisServer, redis_server
from tests.sources import CREATE, TENANT, articles, execute, make_sync

WAL = (
    "By default, SQLite does a checkpoint automatically when the WAL file reaches a "
    "threshold size of 1000 pages. Readers do not block writers in WAL mode."
)
CHANGED = (
    "SQLite now checkpoints when the WAL file reaches 4000 pages. Readers do not block "
    "writers in WAL mode."
)
QUESTION = "How often does SQLite do a checkpoint in WAL mode?"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def cached(
    request: pytest.FixtureRequest, resources: Resources, settings: Settings, tmp_path: Path
) -> Iterator[Resources]:
    """The test engines with the answer cache on, on the parametrised engine."""
    settings = settings.model_copy(deep=True)
    settings.cache.enabled = True
    settings.cache.backend = request.param
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        settings.cache.redis_url = server.url
        import redis as redis_client

        with redis_client.Redis.from_url(server.url) as client:
            client.flushdb()
    res = replace(resources, settings=settings)
    with use_resources(res):
        yield res
    assert res.answer_cache is not None
    assert res.answer_cache.store.counters().get("error", 0) == 0  # no failure passed as a miss
    res.answer_cache.store.close()


def ingest(
    res: Resources, folder: Path, text: str, tenant: str = "t1", acl: tuple[str, ...] = ()
) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "wal.txt").write_text(text)
    options = IngestOptions(tenant_id=tenant, acl=acl, workers=0, progress=False)
    small_ingestor(res).ingest([folder], options)


async def turn(question: str, ctx: Context, thread: str) -> Answer:
    agent = compile_agent(InMemorySaver())
    return await ask(agent, question, context=ctx, thread_id=thread, max_chars=8000)


CTX = Context(tenant_id="t1", user_id="u1")


async def test_the_same_question_again_is_a_hit_with_the_same_citations(
    cached: Resources, tmp_path: Path
) -> None:
    ingest(cached, tmp_path / "docs", WAL)
    first = await turn(QUESTION, CTX, "a")
    assert first.cache == "miss" and first.citations and "1000 pages" in first.answer
    again = await turn(QUESTION, replace(CTX, user_id="u2"), "b")
    assert again.cache == "hit"
    assert (again.answer, again.citations) == (first.answer, first.citations)
    assert again.usage.get("total_tokens", 0) == 0  # no model ran


async def test_other_tenants_groups_and_namespaces_never_hit(
    cached: Resources, tmp_path: Path
) -> None:
    ingest(cached, tmp_path / "docs", WAL)
    ingest(cached, tmp_path / "docs", WAL, tenant="t2")
    ingest(cached, tmp_path / "docs", WAL, tenant="t1#eu")
    assert (await turn(QUESTION, CTX, "a")).cache == "miss"
    others = [
        Context(tenant_id="t2", user_id="u1"),
        Context(tenant_id="t1", user_id="u1", acl_groups=["eng"]),
        Context(tenant_id="t1", user_id="u1", namespace="eu"),
        Context(tenant_id="t1", user_id="u1", system_prompt="Answer in French. {now}"),
        Context(tenant_id="t1", user_id="u1", temperature=1.5),
        Context(tenant_id="t1", user_id="u1", tools=[]),
    ]
    for i, ctx in enumerate(others):
        assert (await turn(QUESTION, ctx, f"o{i}")).cache == "miss", ctx
    # Each of them stored its own entry, which its own scope then hits.
    assert (await turn(QUESTION, replace(others[1], user_id="u9"), "g")).cache == "hit"
    assert (await turn(QUESTION, CTX, "back")).cache == "hit"


async def test_an_answer_whose_cited_document_changed_or_went_is_never_served(
    cached: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    ingest(cached, docs, WAL)
    assert (await turn(QUESTION, CTX, "a")).cache == "miss"
    ingest(cached, docs, CHANGED)
    fresh = await turn(QUESTION, CTX, "b")
    assert fresh.cache == "miss" and "4000 pages" in fresh.answer
    assert (await turn(QUESTION, CTX, "c")).cache == "hit"
    (doc,) = cached.writer.documents("t1")
    cached.writer.delete_document("t1", doc.doc_id)
    cached.writer.forget_record("t1", doc.doc_id)  # type: ignore[attr-defined]
    assert (await turn(QUESTION, CTX, "d")).cache != "hit"


async def test_a_near_miss_misses_and_a_paraphrase_hits(cached: Resources, tmp_path: Path) -> None:
    ingest(cached, tmp_path / "docs", WAL)
    assert (await turn(QUESTION, CTX, "a")).cache == "miss"
    assert (
        await turn("How often does SQLite not do a checkpoint in WAL mode?", CTX, "b")
    ).cache == "miss"
    assert (
        await turn("How often does SQLite do a checkpoint in rollback mode?", CTX, "c")
    ).cache == "miss"
    assert (
        await turn("In WAL mode, how often does SQLite do a checkpoint?", CTX, "d")
    ).cache == "hit"


async def test_bypass_and_later_turns_of_a_thread_take_no_part(
    cached: Resources, tmp_path: Path
) -> None:
    ingest(cached, tmp_path / "docs", WAL)
    bypass = replace(CTX, cache=False)
    assert (await turn(QUESTION, bypass, "a")).cache == ""
    assert (await turn(QUESTION, CTX, "b")).cache == "miss"  # the bypass stored nothing
    assert (await turn(QUESTION, bypass, "c")).cache == ""  # nor read it
    agent = compile_agent(InMemorySaver())
    await ask(
        agent, "Do readers block writers in WAL mode?", context=CTX, thread_id="t", max_chars=800
    )
    later = await ask(agent, QUESTION, context=CTX, thread_id="t", max_chars=800)
    assert later.cache == ""  # it has history


def test_the_engine_keeps_scopes_apart_and_bounds_age_and_size(
    cached: Resources, settings: Settings
) -> None:
    cache = cached.answer_cache
    assert isinstance(cache, SemanticCache)
    store = cache.store
    vector = np.ones(cached.embedder.dim, np.float32)
    entry = CachedAnswer(question="q", answer="a", citations=[], documents=[], created=1e12)
    store.put("scope-a", vector, entry)
    assert [e.answer for _, e, _ in store.nearest("scope-a", vector, 4)] == ["a"]
    assert store.nearest("scope-b", vector, 4) == []
    bounded = replace_settings(cached.settings, max_entries=2)
    small = build_store(bounded, cached.embedder.dim)
    try:
        small.clear()
        for i in range(5):
            small.put("s", vector, replace_entry(entry, created=1e12 + i))
        assert small.count() == 2
        assert {e.created for _, e, _ in small.nearest("s", vector, 9)} == {1e12 + 3, 1e12 + 4}
        small.put("old", vector, replace_entry(entry, created=1.0))  # expired at once
        assert small.nearest("old", vector, 4) == []
        assert small.clear() >= 2 and small.count() == 0
    finally:
        small.close()


def replace_settings(settings: Settings, **cache: object) -> Settings:
    settings = settings.model_copy(deep=True)
    for key, value in cache.items():
        setattr(settings.cache, key, value)
    return settings


def replace_entry(entry: CachedAnswer, **changes: object) -> CachedAnswer:
    return replace(entry, **changes)  # type: ignore[arg-type]


RACE_SCOPE = Scope(tenant="t1", groups=["eng"], model="m", embed_model="e", system_prompt="")
"""Any scope: :meth:`SemanticCache.put` checks the citations against the index alone."""


async def test_an_acl_change_of_a_file_reaches_the_index_and_the_answer_cache(
    cached: Resources, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    eng, hr = replace(CTX, acl_groups=["eng"]), replace(CTX, acl_groups=["hr"])
    ingest(cached, docs, WAL, acl=("eng",))
    first = await turn(QUESTION, eng, "a")
    assert first.cache == "miss" and first.citations
    assert (await turn(QUESTION, replace(eng, user_id="u2"), "b")).cache == "hit"
    ingest(cached, docs, WAL, acl=("hr",))  # the same file, now for another group
    after = await turn(QUESTION, eng, "c")
    assert after.cache != "hit" and not after.citations
    assert (await turn(QUESTION, hr, "d")).citations
    # An answer made from the chunks the old groups read is not stored as citing the new.
    assert cached.answer_cache is not None
    assert not await cached.answer_cache.put(RACE_SCOPE, QUESTION, "x", first.citations, 1)


async def test_a_source_sync_s_acl_change_and_deletion_reach_the_answer_cache(
    cached: Resources, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    execute(
        url,
        CREATE,
        f"INSERT INTO articles VALUES (1, 'WAL', '{WAL}', NULL, 'eng', '2026-01-01 10:00:00')",
    )
    sync, source = make_sync(cached), articles(url)
    sync.sync(source, tenant_id=TENANT)
    eng, hr = replace(CTX, acl_groups=["eng"]), replace(CTX, acl_groups=["hr"])
    first = await turn(QUESTION, eng, "a")
    assert first.cache == "miss" and first.citations
    assert (await turn(QUESTION, eng, "b")).cache == "hit"

    execute(url, "UPDATE articles SET groups = 'hr', updated_at = '2026-01-02 10:00:00'")
    assert sync.sync(source, tenant_id=TENANT).indexed == 1
    after = await turn(QUESTION, eng, "c")
    assert after.cache != "hit" and not after.citations
    # A turn that read the row under its old groups, ending after the sync, stores nothing.
    assert cached.answer_cache is not None
    assert not await cached.answer_cache.put(RACE_SCOPE, QUESTION, "x", first.citations, 1)

    assert (await turn(QUESTION, hr, "d")).cache == "miss"
    assert (await turn(QUESTION, hr, "e")).cache == "hit"
    execute(url, "DELETE FROM articles")
    assert sync.sync(source, tenant_id=TENANT).deleted == 1
    gone = await turn(QUESTION, hr, "f")
    assert gone.cache != "hit" and not gone.citations

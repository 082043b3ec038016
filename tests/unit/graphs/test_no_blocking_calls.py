"""No run makes a blocking call on the event loop (``langgraph dev`` would stop it).

``langgraph dev`` runs graphs under blockbuster, which turns a blocking call made on the
event loop (a file write, ``os.mkdir``, ``time.sleep``, a socket) into ``BlockingError``.
These turns run every built-in tool, and an approval and its resume, through the compiled
graph with blockbuster on for our code, so a new blocking call fails here first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from app.conversations import thread_key
from app.graphs.agent import compile_agent
from app.ingest.pipeline import IngestOptions
from app.resources import Resources, use_resources
from app.turns import ask, resume
from tests.fakes import small_ingestor
from tests.servers import asgi_server
from tests.tooling import CTX, audit, calls, configure, with_model

WAL = "SQLite runs a checkpoint when the WAL file reaches a threshold size of 1000 pages."


@pytest.fixture
def guard() -> Iterator[BlockBuster]:
    """Blockbuster on for calls made from ``app``, with no time zone loaded yet."""
    ZoneInfo.clear_cache()
    with blockbuster_ctx("app") as bb:
        yield bb


@pytest.fixture
def corpus(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Resources:
    docs = tmp_path_factory.mktemp("docs")
    (docs / "wal.txt").write_text(WAL)
    small_ingestor(resources).ingest(
        [docs], IngestOptions(tenant_id="t1", workers=0, progress=False)
    )
    return resources


@pytest.mark.parametrize(
    ("question", "tool"),
    [
        ("What is 17 * 23?", "calculator"),
        ("What time is it in UTC?", "current_time"),
    ],
)
async def test_offline_tool_turns_make_no_blocking_call(
    corpus: Resources, guard: BlockBuster, question: str, tool: str
) -> None:
    agent = compile_agent(InMemorySaver(), InMemoryStore())
    answer = await ask(agent, question, context=CTX, thread_id=tool, max_chars=8000)
    assert not answer.refused, answer.answer
    guard.deactivate()
    assert [(r["tool"], r["outcome"]) for r in audit(corpus.settings)] == [(tool, "ok")]


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("knowledge_search", {"query": "WAL checkpoint threshold"}),
        ("convert_units", {"value": 5, "from_unit": "mile", "to_unit": "km"}),
        ("current_time", {"timezone": "Asia/Tokyo"}),
    ],
)
async def test_scripted_tool_turns_make_no_blocking_call(
    corpus: Resources, guard: BlockBuster, name: str, args: dict[str, Any]
) -> None:
    res, _ = with_model(corpus, [calls((name, args)), AIMessage("Done.")])
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), InMemoryStore())
        answer = await ask(agent, "use the tool", context=CTX, thread_id="s", max_chars=8000)
    assert answer.answer == "Done."
    guard.deactivate()
    assert [(r["tool"], r["outcome"]) for r in audit(res.settings)] == [(name, "ok")]


async def test_an_approval_and_its_resume_make_no_blocking_call(
    corpus: Resources, guard: BlockBuster
) -> None:
    note = calls(("create_note", {"title": "Groceries", "text": "buy oat milk"}))
    res, _ = with_model(corpus, [note, AIMessage("Saved your note.")])
    with use_resources(res):
        agent = compile_agent(InMemorySaver(), InMemoryStore())
        paused = await ask(agent, "note it", context=CTX, thread_id="n", max_chars=8000)
        assert [a["tool"] for a in paused.approvals] == ["create_note"]
        done = await resume(agent, "approve", context=CTX, thread_id="n")
    assert done.answer == "Saved your note."
    guard.deactivate()
    (record,) = audit(res.settings)
    assert (record["outcome"], record["approved_by_user"]) == ("ok", True)


async def test_an_http_get_makes_no_blocking_call(corpus: Resources, guard: BlockBuster) -> None:
    page = FastAPI()

    @page.get("/page")
    async def hello() -> PlainTextResponse:
        return PlainTextResponse("Hello world")

    guard.deactivate()  # the test's own server starts and stops off the guard
    with asgi_server(page) as site:
        guard.activate()
        res, model = with_model(
            corpus,
            [calls(("http_get", {"url": f"{site}/page"})), AIMessage("Done.")],
            tools={"enabled": ["http_get"], "http_allowlist": ["127.0.0.1"]},
        )
        with use_resources(res):
            agent = compile_agent(InMemorySaver(), InMemoryStore())
            await ask(agent, "fetch it", context=CTX, thread_id="h", max_chars=8000)
        guard.deactivate()
    assert model.calls[1][-1].text == "HTTP 200 text/plain\n\nHello world"


async def test_memory_and_summaries_make_no_blocking_call(
    corpus: Resources, guard: BlockBuster
) -> None:
    settings = configure(corpus, limits={"history_token_budget": 256, "keep_recent_messages": 2})
    store = InMemoryStore()
    with use_resources(replace(corpus, settings=settings)):
        agent = compile_agent(InMemorySaver(), store)
        for question in [
            "Remember that my favourite database is SQLite.",
            "How often does SQLite run a checkpoint?",
            "What is 17 * 23?",
            "What does the WAL file reach before a checkpoint?",
            *["Tell me again how often SQLite checkpoints the WAL file, in pages."] * 4,
        ]:
            await ask(agent, question, context=CTX, thread_id="m", max_chars=8000)
        state = await agent.aget_state({"configurable": {"thread_id": thread_key(CTX, "m")}})
    guard.deactivate()
    assert state.values.get("summarized_count", 0) > 0, "the history was never summarised"
    assert await store.asearch(("memories",)), "nothing was remembered"

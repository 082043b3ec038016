"""The built-in tools: unit conversion, http_get against a real local server, knowledge
search as the caller (with citations), create_note, and explicit-fact extraction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from langchain_core.messages import AIMessage, ToolCall
from langgraph.store.memory import InMemoryStore

from app.ingest.pipeline import IngestOptions
from app.memory.namespaces import DIGEST_DIGITS, namespace
from app.resources import Resources, use_resources
from app.settings import ToolSettings
from app.text.facts import explicit_facts
from app.tools.catalog import build_registry
from app.tools.context import CALLER, ToolContext
from app.tools.http import fetch, host_allowed
from app.tools.units import convert
from tests.fakes import small_ingestor
from tests.servers import asgi_server
from tests.tooling import CTX, calls, run_turn, with_model

# -- convert_units ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((5, "km", "mile"), "5 km = 3.106855961 mile"),
        ((100, "degC", "degF"), "100 degC = 212 degF"),
        ((1, "GiB", "MB"), "1 GiB = 1073.741824 MB"),
        ((60, "mile/hour", "m/s"), "60 mile/hour = 26.8224 m/s"),
    ],
)
def test_convert_units(args: tuple[float, str, str], expected: str) -> None:
    assert convert(*args) == expected


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((3, "kg", "m"), "measure different things"),
        ((1, "furlongz", "m"), "unknown unit 'furlongz'"),
        ((1, "m", "__import__('os')"), "cannot read the units"),
        ((1e308, "km", "mm"), "too large or too small"),
        ((float("nan"), "m", "km"), "finite"),
    ],
)
def test_convert_units_rejects(args: tuple[float, str, str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        convert(*args)


# -- http_get -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    app = FastAPI()

    @app.get("/page")
    async def page() -> Response:
        html = "<html><script>var x=1;</script><body><h1>Hello</h1> <p>world</p></body></html>"
        return Response(html, media_type="text/html")

    @app.get("/big")
    async def big() -> PlainTextResponse:
        return PlainTextResponse("x" * 5000)

    @app.get("/away")
    async def away() -> RedirectResponse:
        return RedirectResponse("http://localhost:1/elsewhere")

    @app.get("/home")
    async def home() -> RedirectResponse:
        return RedirectResponse("/page")

    @app.get("/image")
    async def image() -> Response:
        return Response(b"\x89PNG....", media_type="image/png")

    with asgi_server(app) as url:
        yield url


def caller(*allow: str, max_bytes: int = 200_000) -> ToolContext:
    cfg = ToolSettings(http_allowlist=list(allow), http_max_bytes=max_bytes)
    return ToolContext(tenant_id="t1", user_id="u1", settings=cfg)


async def test_http_get_fetches_allowlisted_hosts_as_text(site: str) -> None:
    port = site.rsplit(":", 1)[1]
    for allow in ("127.0.0.1", f"127.0.0.1:{port}"):
        assert await fetch(f"{site}/page", caller(allow)) == "HTTP 200 text/html\n\nHello world"
    assert await fetch(f"{site}/home", caller("127.0.0.1")) == "HTTP 200 text/html\n\nHello world"
    assert (await fetch(f"{site}/image", caller("127.0.0.1"))).endswith(
        "[binary content not shown]"
    )


async def test_http_get_refuses_what_is_not_allowed(site: str) -> None:
    with pytest.raises(ValueError, match="not on the allowlist"):
        await fetch(f"{site}/page", caller())  # empty allowlist: nothing
    with pytest.raises(ValueError, match="not on the allowlist"):
        await fetch(f"{site}/page", caller("127.0.0.1:1"))  # another port
    with pytest.raises(ValueError, match="'localhost' is not on the allowlist"):
        await fetch(f"{site}/away", caller("127.0.0.1"))  # a redirect off the list
    with pytest.raises(ValueError, match="only http"):
        await fetch("file:///etc/passwd", caller("127.0.0.1"))


async def test_http_get_caps_the_body(site: str) -> None:
    text = await fetch(f"{site}/big", caller("127.0.0.1", max_bytes=1024))
    assert text.endswith("[cut at 1024 bytes]")
    assert "x" * 1024 in text and "x" * 1025 not in text


def test_host_matching_is_exact() -> None:
    import httpx

    assert host_allowed(httpx.URL("https://API.example.com/x"), ["api.example.com"])
    assert not host_allowed(httpx.URL("https://evil-api.example.com/"), ["api.example.com"])
    assert not host_allowed(httpx.URL("https://api.example.com.evil.io/"), ["api.example.com"])
    assert host_allowed(httpx.URL("https://api.example.com/"), ["api.example.com:443"])
    assert not host_allowed(httpx.URL("http://api.example.com/"), ["api.example.com:443"])


async def test_http_get_is_off_until_enabled(resources: Resources, site: str) -> None:
    assert "http_get" not in build_registry(resources.settings.tools).names
    res, model = with_model(
        resources,
        [calls(("http_get", {"url": f"{site}/page"})), AIMessage("done")],
        tools={"enabled": ["http_get"], "http_allowlist": ["127.0.0.1"]},
    )
    with use_resources(res):
        await run_turn("fetch it")
    assert model.calls[1][-1].text == "HTTP 200 text/html\n\nHello world"


# -- knowledge_search ---------------------------------------------------------------


@pytest.fixture
def corpus(resources: Resources, tmp_path: Path) -> Resources:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "wal.txt").write_text("SQLite checkpoints the WAL file when it reaches 1000 pages.")
    (docs / "vacuum.txt").write_text("VACUUM reclaims storage occupied by dead tuples.")
    ingestor = small_ingestor(resources)
    ingestor.ingest([docs], IngestOptions(tenant_id="t1", workers=0, progress=False))
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "plan.txt").write_text("The WAL migration plan is confidential: 1000 pages soon.")
    ingestor.ingest(
        [secret], IngestOptions(tenant_id="t1", acl=("board",), workers=0, progress=False)
    )
    ingestor.ingest([docs], IngestOptions(tenant_id="t2", workers=0, progress=False))
    return resources


async def test_knowledge_search_results_are_cited_like_retrieved_sources(corpus: Resources) -> None:
    res, model = with_model(
        corpus,
        [
            calls(("knowledge_search", {"query": "WAL checkpoint pages", "top_n": 3})),
            AIMessage("It checkpoints at 1000 pages [S1]. Invented [S9]."),
        ],
    )
    with use_resources(res):
        answer = await run_turn("when does the WAL checkpoint?")
    shown = model.calls[1][-1].text
    assert shown.startswith("[S1] ") and "wal.txt" in shown and "confidential" not in shown
    assert answer.answer == "It checkpoints at 1000 pages [S1]. Invented."
    (citation,) = answer.citations
    assert citation["label"] == "S1" and citation["source"].endswith("wal.txt")


async def test_knowledge_search_uses_the_callers_tenant_and_groups(corpus: Resources) -> None:
    registry = build_registry(corpus.settings.tools)

    async def search(ctx: ToolContext) -> list[str]:
        call = ToolCall(
            name="knowledge_search",
            args={"query": "WAL pages", "top_n": 5},
            id="k",
            type="tool_call",
        )
        message = await registry.execute(call, timeout_s=10, inject={CALLER: ctx})
        return sorted(Path(p["source"]).name for p in message.artifact)

    plain = ToolContext(tenant_id="t1", user_id="u1", retriever=corpus.retriever)
    board = ToolContext(
        tenant_id="t1", user_id="u1", acl_groups=("board",), retriever=corpus.retriever
    )
    other = ToolContext(tenant_id="t3", user_id="u1", retriever=corpus.retriever)
    assert "plan.txt" not in await search(plain)
    assert "plan.txt" in await search(board)
    assert await search(other) == []


# -- create_note --------------------------------------------------------------------


async def test_create_note_needs_a_store(resources: Resources) -> None:
    note = calls(("create_note", {"title": "t", "text": "x"}))
    allow = {"policies": {"create_note": "allow"}}
    res, model = with_model(resources, [note, AIMessage("ok")], tools=allow)
    with use_resources(res):
        await run_turn("note it")
    assert "no store is configured" in model.calls[1][-1].text
    store = InMemoryStore()
    res, model = with_model(resources, [note, AIMessage("ok")], tools=allow)
    with use_resources(res):
        await run_turn("note it", store=store)
    [item] = await store.asearch(namespace("notes", CTX.tenant_id, CTX.user_id))
    assert (item.value["text"], item.value["title"], item.value["origin"]) == ("x", "t", "tool")
    assert model.calls[1][-1].text.startswith("Saved the note 't' (id ")


# -- memory helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("Remember that my locker code is 4512.", ["The user's locker code is 4512."]),
        ("please remember: I am vegetarian", ["The user is vegetarian."]),
        (
            "What is WAL? Also, don't forget that my flight is on Friday!",
            ["The user's flight is on Friday."],
        ),
        ("Keep in mind I have two kids.", ["The user has two kids."]),
        ("I remember the old days fondly.", []),
        ("Do you remember what I said?", []),
        ("remember it", []),
    ],
)
def test_explicit_facts(text: str, facts: list[str]) -> None:
    assert explicit_facts(text) == facts


def test_namespaces_never_hold_raw_ids_and_never_prefix_each_other() -> None:
    labels = {
        namespace("memories", t, u) for t in ("acme", "acme-eu") for u in ("run", "runner", "Run")
    }
    assert len(labels) == 6
    for kind, tenant, user in labels:
        assert kind == "memories"
        assert len(tenant) == len(user) == DIGEST_DIGITS + 1
        assert tenant[1:].isdigit() and user[1:].isdigit()
    assert namespace("memories", "a", "b/c") != namespace("memories", "a/b", "c")
    assert namespace("notes", "t", "u")[1:] == namespace("memories", "t", "u")[1:]

"""One channel per request: namespace, hybrid search, depth and the tool subset travel
in ``Context`` and the nodes read them there; ``Resources`` holds the process's engines."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall
from langgraph.runtime import Runtime

from app.context import Context
from app.graphs.agent import graph
from app.nodes.respond import respond
from app.nodes.retrieve import retrieve
from app.nodes.route import route
from app.nodes.tools import after_respond, execute_tools
from app.resources import Resources, get_resources, use_resources
from app.retrieval.protocols import KeywordIndex, Vector, VectorIndex
from app.retrieval.types import Chunk, Hit, SearchFilter, namespace_tenant
from app.server.auth import Principal
from app.server.completions import prepare_turn
from app.server.errors import ApiError
from app.server.schemas import ChatRequest
from app.state import AgentState
from app.tools.catalog import build_registry
from app.tools.context import CALLER, ToolContext
from tests.fakes import ScriptedChatModel
from tests.tooling import calls, configure


def _runtime(**knobs: Any) -> Runtime[Context]:
    return Runtime(context=Context(tenant_id="t1", user_id="u1", **knobs))


def _index(resources: Resources, tenant: str, *texts: str) -> None:
    chunks = [
        Chunk(
            chunk_id=f"{tenant}-c{i}",
            doc_id=f"{tenant}-d{i}",
            tenant_id=tenant,
            source=f"{tenant}-{i}.md",
            text=t,
            span=(0, len(t)),
            content_hash=f"{tenant}-h{i}",
        )
        for i, t in enumerate(texts)
    ]
    resources.retriever.vectors.upsert(chunks, resources.embedder.embed_documents(texts))


@dataclass
class _Searches:
    """What the engines were asked: (engine, tenant searched, depth)."""

    log: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass
class _SeenVectors:
    inner: VectorIndex
    seen: _Searches

    def upsert(self, chunks: Sequence[Chunk], vectors: Vector) -> None:
        self.inner.upsert(chunks, vectors)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        return self.inner.delete_document(tenant_id, doc_id)

    def search(self, vector: Vector, flt: SearchFilter, k: int) -> list[Hit]:
        self.seen.log.append(("vector", flt.tenant_id, k))
        return self.inner.search(vector, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        return self.inner.count(flt, limit=limit)


@dataclass
class _SeenKeywords:
    inner: KeywordIndex
    seen: _Searches

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        self.inner.upsert(chunks)

    def delete_document(self, tenant_id: str, doc_id: str) -> int:
        return self.inner.delete_document(tenant_id, doc_id)

    def search(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        self.seen.log.append(("keyword", flt.tenant_id, k))
        return self.inner.search(query, flt, k)

    def count(self, flt: SearchFilter | None = None, *, limit: int | None = None) -> int:
        return self.inner.count(flt, limit=limit)


def _watched(resources: Resources, **retriever: Any) -> tuple[Resources, _Searches]:
    """The same engines, recording every search they are asked for."""
    seen = _Searches()
    r = resources.retriever
    watched = replace(
        r,
        vectors=_SeenVectors(r.vectors, seen),
        keywords=_SeenKeywords(r.keywords, seen),
        **retriever,
    )
    return replace(resources, retriever=watched), seen


# -- Context ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"namespace": "a/b"}, "namespace must match"),
        ({"namespace": ""}, "namespace must match"),
        ({"namespace": "ops#x"}, "namespace must match"),
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"tools": ["calculator", ""]}, "tools must name tools"),
    ],
)
def test_context_refuses_knobs_no_run_could_use(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Context(**knobs)


def test_the_request_knobs_are_documented_json_fields_of_the_graphs_context() -> None:
    """LangGraph Studio shows the context schema as the assistant's configurable fields."""
    schema = graph.get_context_jsonschema()
    assert schema is not None
    props = schema["properties"]
    for name in ("namespace", "hybrid", "top_k", "top_n", "tools"):
        assert props[name]["description"], name
    assert props["hybrid"]["type"] == "boolean"
    assert {"type": "array", "items": {"type": "string"}} in props["tools"]["anyOf"]


# -- the process's engines ---------------------------------------------------------------


def test_the_engines_in_use_are_the_processs_whatever_the_thread(resources: Resources) -> None:
    other = replace(resources, counter=resources.counter)
    seen: list[Resources] = []
    with use_resources(other):
        worker = threading.Thread(target=lambda: seen.append(get_resources()))
        worker.start()
        worker.join()
    assert seen == [other] and seen[0] is other
    assert get_resources() is resources  # restored when the block ends


def test_the_toolbox_is_built_once_and_subsets_share_it(resources: Resources) -> None:
    box = resources.toolbox
    assert resources.toolbox is box
    assert box.offering(None) is box
    names = list(box.registry.names)
    subset = box.offering([names[1], names[0], "no_such_tool"])
    assert subset is box.offering((names[0], names[1]))
    assert list(subset.registry.names) == names[:2]  # the registry's order
    assert box.offering([]).registry.names == ()
    assert replace(resources).toolbox is not box  # other engines, another toolbox


# -- retrieval knobs -----------------------------------------------------------------------


async def test_a_namespace_is_the_tenant_in_the_filter_the_nodes_build(
    resources: Resources,
) -> None:
    _index(resources, namespace_tenant("t1", "ops"), "The WAL is checkpointed every 1000 pages.")
    res, seen = _watched(resources)
    state = AgentState(messages=[HumanMessage("When is the WAL checkpointed?")])
    with use_resources(res):
        ops = (await route(state, _runtime(namespace="ops")))["route"]
        own = (await route(state, _runtime()))["route"]
        assert (ops, own) == ("rag", "direct")
        state = AgentState(messages=state.messages, query="WAL checkpointed", route="rag")
        found = await retrieve(state, _runtime(namespace="ops"))
        assert [s["source"] for s in found["sources"]] == ["t1#ops-0.md"]
        assert (await retrieve(state, _runtime()))["sources"] == []
    assert {tenant for _, tenant, _ in seen.log} == {"t1#ops", "t1"}


async def test_dense_only_asks_no_keyword_search(resources: Resources) -> None:
    _index(resources, "t1", "The WAL is checkpointed every 1000 pages.")
    res, seen = _watched(resources)
    state = AgentState(messages=[HumanMessage("q")], query="WAL checkpointed", route="rag")
    with use_resources(res):
        dense = await retrieve(state, _runtime(hybrid=False))
        assert [e for e, _, _ in seen.log] == ["vector"]
        seen.log.clear()
        both = await retrieve(state, _runtime())
        assert sorted(e for e, _, _ in seen.log) == ["keyword", "vector"]
    assert [s["chunk_id"] for s in dense["sources"]] == ["t1-c0"]
    assert [s["chunk_id"] for s in both["sources"]] == ["t1-c0"]


@pytest.mark.parametrize(
    ("configured", "wanted", "depths"),
    [
        ({}, None, {"vector": 20, "keyword": 20}),
        ({}, 3, {"vector": 20, "keyword": 20}),  # never shrinks
        ({}, 30, {"vector": 30, "keyword": 30}),
        ({"dense_depth": 7}, 30, {"vector": 7, "keyword": 30}),  # a set depth wins
    ],
)
async def test_top_k_grows_the_candidate_depth(
    resources: Resources, configured: dict[str, int], wanted: int | None, depths: dict[str, int]
) -> None:
    _index(resources, "t1", "The WAL is checkpointed every 1000 pages.")
    res, seen = _watched(resources, **configured)
    state = AgentState(messages=[HumanMessage("q")], query="WAL checkpointed", route="rag")
    with use_resources(res):
        await retrieve(state, _runtime(top_k=wanted))
    assert {engine: k for engine, _, k in seen.log} == depths


async def test_knowledge_search_reads_the_callers_namespace_and_depth(
    resources: Resources,
) -> None:
    _index(resources, namespace_tenant("t1", "ops"), "The WAL is checkpointed every 1000 pages.")
    res, seen = _watched(resources)
    registry = build_registry(res.settings.tools)
    call = ToolCall(name="knowledge_search", args={"query": "WAL"}, id="k", type="tool_call")

    async def search(**knobs: Any) -> list[str]:
        ctx = ToolContext(tenant_id="t1", user_id="u1", retriever=res.retriever, **knobs)
        message = await registry.execute(call, timeout_s=10, inject={CALLER: ctx})
        return [p["source"] for p in message.artifact or []]

    assert await search() == []
    assert await search(namespace="ops", hybrid=False, top_k=25) == ["t1#ops-0.md"]
    assert seen.log[-1] == ("vector", "t1#ops", 25)


# -- the tool subset ---------------------------------------------------------------------


async def test_respond_binds_the_contexts_tools(resources: Resources) -> None:
    model = ScriptedChatModel(replies=[AIMessage("ok")])
    state = AgentState(messages=[HumanMessage("q")])
    with use_resources(replace(resources, chat_model=model)):
        await respond(state, _runtime(tools=["calculator"]))
        assert model.bound_tools == ["calculator"]
        bound = model.bind_count[0]
        await respond(state, _runtime(tools=[]))
        assert model.bind_count[0] == bound  # nothing offered, nothing bound
        update = await respond(state, _runtime())
        assert model.bound_tools == list(resources.tools.names)
    assert update["max_tool_steps"] == resources.settings.limits.max_tool_steps


async def test_a_tool_outside_the_contexts_subset_is_unknown(resources: Resources) -> None:
    state = AgentState(
        messages=[
            HumanMessage("q"),
            calls(("current_time", {}), ("calculator", {"expression": "6*7"})),
        ]
    )
    update = await execute_tools(state, _runtime(tools=["calculator"]))
    outside, inside = update["messages"]
    assert outside.status == "error"
    assert "unknown tool 'current_time'; available tools: calculator" in outside.content
    assert (inside.status, inside.content) == ("success", "42")


def test_after_respond_reads_the_state_alone(resources: Resources) -> None:
    """The limit ``respond`` wrote into the state decides, not the engines' settings."""
    res = replace(resources, settings=configure(resources, limits={"max_tool_steps": 1}))
    call = calls(("calculator", {"expression": "1"}))
    with use_resources(res):
        assert after_respond(AgentState(messages=[call], tool_steps=3)) == "execute_tools"
        state = AgentState(messages=[call], tool_steps=3, max_tool_steps=3)
        assert after_respond(state) == "guard_output"


# -- a request becomes a Context ----------------------------------------------------------

_ALICE = Principal(key_id="k", tenant_id="t1", user_id="alice", groups=("ops",))


def _request(**extra: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **extra})


def test_a_request_puts_its_knobs_in_the_context(resources: Resources) -> None:
    body = _request(
        retrieval={"namespace": "ops", "top_k": 3, "hybrid": False},
        tools=[{"type": "function", "function": {"name": "calculator"}}],
    )
    ctx = prepare_turn(body, _ALICE, resources, 8000).context
    assert (ctx.tenant_id, ctx.namespace, ctx.hybrid, ctx.top_k, ctx.top_n) == (
        "t1",
        "ops",
        False,
        3,
        3,
    )
    assert ctx.tools == ["calculator"]
    plain = prepare_turn(_request(), _ALICE, resources, 8000).context
    assert (plain.namespace, plain.hybrid, plain.top_k, plain.tools) == (None, True, None, None)
    none = prepare_turn(_request(tool_choice="none"), _ALICE, resources, 8000).context
    assert none.tools == []


def test_a_request_naming_a_server_tool_that_is_off_is_refused(resources: Resources) -> None:
    body = _request(tools=[{"type": "function", "function": {"name": "http_get"}}])
    with pytest.raises(ApiError) as caught:
        prepare_turn(body, _ALICE, resources, 8000)
    offered = ", ".join(resources.tools.names)
    assert (caught.value.status, caught.value.code) == (400, "unknown_tool")
    assert caught.value.param == "tools[0].function.name"
    assert f"server tool that this server does not offer (it offers: {offered})" in (
        caught.value.message
    )


def test_any_other_name_is_a_client_tool(resources: Resources) -> None:
    client = {"type": "function", "function": {"name": "rm_rf", "parameters": {"type": "object"}}}
    ctx = prepare_turn(_request(tools=[client]), _ALICE, resources, 8000).context
    assert (ctx.tools, ctx.client_tools, ctx.tool_choice) == (None, [client], None)

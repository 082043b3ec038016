"""``/mcp`` on the real server, driven by the official MCP client (streamable HTTP).

Tools and their schemas, ``ask`` with citations, ``search_knowledge`` as the caller,
keys refused, tenants kept apart, and bad arguments answered with ``isError``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from tests.e2e.api_fixtures import MODEL, Api, api_fixture, model_fixture  # noqa: F401 - fixtures
from tests.e2e.conftest import QUESTION, check_citations
from tests.openai_server import OpenAIServer, Reply, ToolCalls

pytestmark = pytest.mark.e2e

ANSWER = "By default SQLite runs a checkpoint when the WAL file reaches 1000 pages. [S1]"
T = TypeVar("T")


def session(api: Api, key: str | None, use: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Run ``use`` on an initialized MCP session with ``key``, on a fresh event loop."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def main() -> T:
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{api.url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            return await use(client)

    return anyio.run(main)


def call(api: Api, key: str, tool: str, args: dict[str, Any]) -> CallToolResult:
    async def use(client: ClientSession) -> CallToolResult:
        return await client.call_tool(tool, args)

    return session(api, key, use)


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def test_tools_are_listed_with_bounded_input_schemas(api: Api) -> None:
    async def use(client: ClientSession) -> Any:
        return await client.list_tools()

    listed = session(api, api.key("mcp-list"), use)

    tools = {tool.name: tool for tool in listed.tools}
    assert {"ask", "search_knowledge"} <= set(tools)
    ask = tools["ask"].inputSchema
    assert ask["required"] == ["question"]
    assert ask["properties"]["question"]["maxLength"] == 2000  # limits.max_input_chars
    assert "ctx" not in ask["properties"]
    search = tools["search_knowledge"].inputSchema["properties"]
    assert search["top_k"]["maximum"] == 20
    assert tools["search_knowledge"].annotations is not None
    assert tools["search_knowledge"].annotations.readOnlyHint is True


def test_ask_answers_with_citations(api: Api, model: OpenAIServer) -> None:
    model.plan(MODEL, Reply(ANSWER))

    result = call(api, api.key("mcp-ask"), "ask", {"question": QUESTION})

    assert result.isError is False, text_of(result)
    answer = result.structuredContent
    assert answer is not None
    assert answer["answer"] == ANSWER
    assert answer["refused"] is False and answer["thread_id"]
    check_citations(answer["answer"], answer["citations"], api.data_dir)
    assert json.loads(text_of(result))["answer"] == ANSWER


def test_ask_does_not_approve_a_write_it_waits_on(api: Api, model: OpenAIServer) -> None:
    args = json.dumps({"title": "Staging", "text": "Rebuilt on Tuesdays."})
    model.plan(MODEL, ToolCalls([("create_note", args)]))

    key = api.key("mcp-approval")
    result = call(api, key, "ask", {"question": "Save a note on staging."})

    assert result.isError is False, text_of(result)
    answer = result.structuredContent
    assert answer is not None
    assert [a["tool"] for a in answer["approvals"]] == ["create_note"]
    with api.http(key) as http:
        thread = http.get(f"/v1/threads/{answer['thread_id']}").json()
    assert [a["tool"] for a in thread["approvals"]] == ["create_note"]  # still waiting

    again = call(api, key, "ask", {"question": "Well?", "thread_id": answer["thread_id"]})
    assert again.isError is True and "waits for a decision" in text_of(again)


def test_search_knowledge_finds_the_callers_passages(api: Api) -> None:
    result = call(
        api, api.key("mcp-search"), "search_knowledge", {"query": "WAL checkpoint", "top_k": 3}
    )

    assert result.isError is False, text_of(result)
    found = result.structuredContent
    assert found is not None
    passages = found["passages"]
    assert 1 <= len(passages) <= 3
    assert any("checkpoint" in p["text"].lower() for p in passages)
    assert {"source", "doc_id", "chunk_id", "text", "score"} == set(passages[0])


def test_another_tenant_sees_none_of_the_documents(api: Api, model: OpenAIServer) -> None:
    key = api.key("mcp-outsider", tenant="other-tenant")
    model.plan(MODEL, Reply("I don't know."))

    found = call(api, key, "search_knowledge", {"query": "WAL checkpoint", "top_k": 20})
    answer = call(api, key, "ask", {"question": QUESTION})

    assert found.isError is False and found.structuredContent == {"passages": []}
    assert answer.structuredContent is not None
    assert answer.structuredContent["citations"] == []
    sent = json.dumps(model.requests)
    assert "1000 pages" not in sent and "wal_autocheckpoint" not in sent.lower()


@pytest.mark.parametrize("key", [None, "rk_wrong_key_000000000000000000000000"])
def test_a_missing_or_wrong_key_is_refused(api: Api, key: str | None) -> None:
    async def use(client: ClientSession) -> Any:
        return await client.list_tools()

    with pytest.raises(BaseException) as caught:  # the SDK's task group wraps the HTTP error
        session(api, key, use)
    errors = [caught.value]
    while isinstance(errors[-1], BaseExceptionGroup):
        errors.append(errors[-1].exceptions[0])
    assert isinstance(errors[-1], httpx.HTTPStatusError)
    assert errors[-1].response.status_code == 401

    with api.http(key) as http:
        response = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"missing_api_key", "invalid_api_key"}


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        ("ask", {}, "question"),
        ("ask", {"question": ""}, "question"),
        ("ask", {"question": "x" * 2001}, "question"),
        ("ask", {"question": "hi", "thread_id": "../../etc"}, "thread_id"),
        ("search_knowledge", {"query": "wal", "top_k": 21}, "top_k"),
        ("search_knowledge", {"query": "wal", "top_k": "many"}, "top_k"),
        ("no_such_tool", {}, "no_such_tool"),
    ],
)
def test_bad_arguments_are_tool_errors(
    api: Api, model: OpenAIServer, tool: str, args: dict[str, Any], says: str
) -> None:
    result = call(api, api.key("mcp-bad-args"), tool, args)

    assert result.isError is True
    assert says in text_of(result)
    assert model.requests == []  # nothing reached the model

"""StreamingChatOpenAI reads the wire itself and behaves as ChatOpenAI does over the SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessageChunk, BaseMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from app.llm.openai.chat_model import StreamingChatOpenAI
from tests.openai_server import (
    ErrorEvent,
    Fail,
    Hang,
    OpenAIServer,
    Reply,
    Stall,
    ToolCalls,
    openai_server,
)

pytestmark = pytest.mark.integration

TOOLS = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with openai_server() as srv:
        yield srv


@pytest.fixture
async def http(server: OpenAIServer) -> AsyncIterator[httpx.AsyncClient]:
    """The SDK path's client (ChatOpenAI and the inherited path of ours)."""
    server.reset()
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def made() -> AsyncIterator[list[StreamingChatOpenAI]]:
    """Models made by a test; their wire connections are closed after it."""
    models: list[StreamingChatOpenAI] = []
    yield models
    for model in models:
        await model.aclose()


@pytest.fixture
def make(
    server: OpenAIServer, http: httpx.AsyncClient, made: list[StreamingChatOpenAI]
) -> Callable[..., Any]:
    def build(cls: type[ChatOpenAI], **kw: Any) -> Any:
        model = cls(
            base_url=server.base_url,
            model="m",
            api_key=SecretStr("sk-test"),
            http_async_client=http,
            max_retries=0,
            stream_usage=True,
            **({"timeout": 5.0} | kw),
        )
        if isinstance(model, StreamingChatOpenAI):
            made.append(model)
        return model

    return build


async def assembled(model: Any, **kwargs: Any) -> BaseMessageChunk:
    chunks = [c async for c in model.astream([HumanMessage("q")], **kwargs)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


@pytest.mark.parametrize(
    "behaviour",
    [
        Reply("Readers never block writers in WAL mode [S1].", piece=3),
        ToolCalls([("calculator", json.dumps({"expression": "2 * (3 + 4)", "x": "é ✓"}))]),
    ],
    ids=["text", "tool-call"],
)
async def test_the_wire_path_assembles_what_the_sdk_path_assembles(
    server: OpenAIServer, make: Callable[..., Any], behaviour: Reply | ToolCalls
) -> None:
    server.plan("m", behaviour, behaviour)
    ours = await assembled(make(StreamingChatOpenAI).bind_tools(TOOLS))
    sdk = await assembled(make(ChatOpenAI).bind_tools(TOOLS))
    assert isinstance(ours, AIMessageChunk) and isinstance(sdk, AIMessageChunk)
    assert ours.text == sdk.text
    # Each reply has fresh tool-call ids; names and assembled arguments must agree.
    assert [(c["name"], c["args"]) for c in ours.tool_calls] == [
        (c["name"], c["args"]) for c in sdk.tool_calls
    ]
    assert all(c["id"] and c["id"].startswith("chatcmpl-tool-") for c in ours.tool_calls)
    assert ours.usage_metadata == sdk.usage_metadata
    assert ours.response_metadata["finish_reason"] == sdk.response_metadata["finish_reason"]
    assert ours.response_metadata["model_name"] == "m"
    # The same request body went out both ways.
    assert server.requests[0] == server.requests[1]


async def test_the_request_carries_the_key_the_headers_and_the_extra_body(
    server: OpenAIServer, make: Callable[..., Any]
) -> None:
    server.plan("m", Reply("ok"))
    model = make(
        StreamingChatOpenAI,
        default_headers={"X-Tenant": "acme"},
        extra_body={"top_k": 5},
        temperature=0.3,
    )
    reply = await assembled(model)
    assert reply.text == "ok"
    headers, body = server.headers[-1], server.requests[-1]
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["x-tenant"] == "acme"
    assert body["top_k"] == 5 and "extra_body" not in body
    assert body["temperature"] == 0.3 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_consecutive_calls_reuse_one_connection(
    server: OpenAIServer, make: Callable[..., Any]
) -> None:
    server.plan("m", Reply("one"), Reply("two"), Reply("three"))
    model = make(StreamingChatOpenAI)
    assert [(await assembled(model)).text for _ in range(3)] == ["one", "two", "three"]
    assert len(set(server.peers)) == 1, server.peers


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (418, openai.APIStatusError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_an_error_status_raises_the_sdks_error_for_it(
    server: OpenAIServer, make: Callable[..., Any], status: int, error: type[Exception]
) -> None:
    server.plan("m", Fail(status, message="no such luck"))
    with pytest.raises(error) as raised:
        await assembled(make(StreamingChatOpenAI))
    assert isinstance(raised.value, openai.APIStatusError)
    assert raised.value.status_code == status
    assert "no such luck" in str(raised.value)


async def test_an_error_event_inside_the_stream_raises_an_api_error(
    server: OpenAIServer, make: Callable[..., Any]
) -> None:
    server.plan("m", ErrorEvent())
    with pytest.raises(openai.APIError) as raised:
        await assembled(make(StreamingChatOpenAI))
    assert not isinstance(raised.value, openai.APIStatusError)


@pytest.mark.parametrize("behaviour", [Hang(2.0), Stall("no more after this", after=1)])
async def test_a_silent_server_times_out_as_an_httpx_read_timeout(
    server: OpenAIServer, make: Callable[..., Any], behaviour: Hang | Stall
) -> None:
    server.plan("m", behaviour)
    with pytest.raises(httpx.ReadTimeout):
        await assembled(make(StreamingChatOpenAI, timeout=0.3))


async def test_a_structured_output_request_takes_the_sdk_path(
    server: OpenAIServer, make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_wire(*args: object, **kwargs: object) -> None:
        raise AssertionError("the wire path cannot serve response_format")

    monkeypatch.setattr(StreamingChatOpenAI, "_stream_wire", no_wire)
    server.plan("m", Reply('{"answer": 42}'))
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "a",
            "schema": {"type": "object", "properties": {"answer": {"type": "integer"}}},
        },
    }
    reply = await assembled(make(StreamingChatOpenAI), response_format=schema)
    assert json.loads(reply.text) == {"answer": 42}
    assert server.requests[-1]["response_format"]["type"] == "json_schema"

"""Every fallback path of the model chain, against a real OpenAI-protocol server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from app.llm.factory import build_models
from app.llm.fallback.resilience import ModelCallError
from app.llm.openai.chat_model import StreamingChatOpenAI
from app.llm.tiers import ModelSet
from app.settings import LLMSettings, ModelEndpoint
from tests.openai_server import (
    ErrorEvent,
    Fail,
    Garbage,
    Hang,
    OpenAIServer,
    Reply,
    Stall,
    ToolCalls,
    openai_server,
)
from tests.servers import free_port

pytestmark = pytest.mark.integration

PROMPT: list[BaseMessage] = [
    SystemMessage("<sources>\n[S1] wal.md\nSQLite checkpoints the WAL at 1000 pages.\n</sources>"),
    HumanMessage("When does SQLite checkpoint the WAL?"),
]
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with openai_server() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server: OpenAIServer, chain: Chains) -> None:
    server.reset()


class Chains:
    """Builds fresh chains (own circuit breakers and connection pools), closed after a test."""

    def __init__(self, server: OpenAIServer) -> None:
        self.server = server
        self.built: list[ModelSet] = []

    def __call__(
        self,
        *,
        base_url: str | None = None,
        fallbacks: tuple[str, ...] = ("secondary",),
        **overrides: Any,
    ) -> BaseChatModel:
        """``primary``, then ``fallbacks``, then the offline answerer."""
        settings: dict[str, Any] = {
            "timeout_s": 1.0,
            "stall_timeout_s": 0.5,
            "backoff_s": 0.01,
            "max_retries": 2,
            **overrides,
        }
        cfg = LLMSettings(
            base_url=base_url or self.server.base_url,
            model="primary",
            fallbacks=[ModelEndpoint(model=m, base_url=self.server.base_url) for m in fallbacks],
            **settings,
        )
        models = build_models(cfg)
        self.built.append(models)
        return models.default.model


@pytest.fixture
async def chain(server: OpenAIServer) -> AsyncIterator[Chains]:
    chains = Chains(server)
    yield chains
    for models in chains.built:
        await models.aclose()


def served_by(message: BaseMessage) -> str:
    return str(message.response_metadata["served_by"]).split("@")[0]


def errors(message: BaseMessage) -> list[tuple[str, str]]:
    return [(f["model"].split("@")[0], f["error"]) for f in message.response_metadata["fallbacks"]]


class Tokens(AsyncCallbackHandler):
    """Collects the chunks a caller sees (not the chain's internal attempts)."""

    def __init__(self) -> None:
        self.chunks: list[AIMessageChunk] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if "nostream" in (kwargs.get("tags") or []):
            return
        message = kwargs["chunk"].message
        assert isinstance(message, AIMessageChunk)
        self.chunks.append(message)


async def test_server_errors_are_retried_then_the_secondary_answers(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Fail(500), Fail(502), Fail(503))
    reply = await chain().ainvoke(PROMPT)
    assert reply.text == "Hello from secondary." and served_by(reply) == "secondary"
    assert server.calls("primary") == 3
    assert [(f["attempt"], f["status"]) for f in reply.response_metadata["fallbacks"]] == [
        (1, 500),
        (2, 502),
        (3, 503),
    ]


async def test_a_hanging_primary_times_out_and_the_secondary_answers(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Hang())
    started = time.monotonic()
    reply = await chain(timeout_s=0.5, deadline_s=3.0, max_retries=0).ainvoke(PROMPT)
    assert time.monotonic() - started < 1.5
    assert served_by(reply) == "secondary" and errors(reply) == [("primary", "timeout")]


async def test_with_every_server_down_the_offline_answerer_replies_within_timeout_plus_1s(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Hang(), Hang(), Hang())
    server.plan("secondary", Hang())
    started = time.monotonic()
    reply = await chain(timeout_s=1.0).ainvoke(PROMPT)
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0 + 1.0, elapsed
    assert served_by(reply) == "offline"
    assert reply.text == "SQLite checkpoints the WAL at 1000 pages. [S1]"
    assert errors(reply) == [("primary", "timeout"), ("secondary", "deadline")]


async def test_a_refused_connection_is_retried_then_falls_back_at_once(
    server: OpenAIServer, chain: Chains
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    reply = await chain(base_url=dead).ainvoke(PROMPT)
    assert time.monotonic() - started < 1.0
    assert served_by(reply) == "secondary"
    assert errors(reply) == [("primary", "connection")] * 3


async def test_a_stream_that_stalls_midway_is_reset_and_answered_by_the_secondary(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Stall("The primary begins and then stops", after=3))
    tokens = Tokens()
    started = time.monotonic()
    reply = await chain(max_retries=0, deadline_s=5.0).ainvoke(PROMPT, {"callbacks": [tokens]})
    assert time.monotonic() - started < 0.5 + 1.0  # the stall timeout, then the secondary
    assert reply.text == "Hello from secondary."  # nothing of the broken stream is kept
    assert errors(reply) == [("primary", "stall")]
    texts = [c.text for c in tokens.chunks]
    reset = next(i for i, c in enumerate(tokens.chunks) if c.response_metadata.get("stream_reset"))
    assert "".join(texts[:reset]) == "The primary begins"[:12]
    assert "".join(texts[reset:]) == "Hello from secondary."
    assert {c.id for c in tokens.chunks} == {reply.id}  # one message for the consumer


async def test_malformed_tool_call_json_is_retried_then_falls_back(
    server: OpenAIServer, chain: Chains
) -> None:
    broken = ToolCalls([("calculator", '{"expression": "1+')])
    server.plan("primary", broken, broken, broken)
    server.plan("secondary", ToolCalls([("calculator", '{"expression": "1+1"}')]))
    reply = await chain().bind_tools([CALC]).ainvoke(PROMPT)
    assert served_by(reply) == "secondary"
    assert [c["args"] for c in reply.tool_calls] == [{"expression": "1+1"}]
    assert errors(reply) == [("primary", "malformed")] * 3


async def test_non_json_events_and_in_stream_errors_count_as_failures(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Garbage(), ErrorEvent())
    reply = await chain(max_retries=1).ainvoke(PROMPT)
    assert served_by(reply) == "secondary"
    assert errors(reply) == [("primary", "malformed"), ("primary", "server")]


async def test_client_errors_are_never_retried_and_surface(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Fail(400, "bad parameter"))
    with pytest.raises(ModelCallError) as caught:
        await chain().ainvoke(PROMPT)
    assert caught.value.kind == "rejected" and caught.value.status == 400
    assert server.calls("primary") == 1 and server.calls("secondary") == 0


async def test_rate_limits_fall_back_without_a_retry(server: OpenAIServer, chain: Chains) -> None:
    server.plan("primary", Fail(429))
    reply = await chain().ainvoke(PROMPT)
    assert served_by(reply) == "secondary" and server.calls("primary") == 1
    assert errors(reply) == [("primary", "overloaded")]


async def test_the_breaker_stops_calls_to_a_dead_endpoint_and_lets_them_through_later(
    server: OpenAIServer, chain: Chains
) -> None:
    model = chain(max_retries=0, breaker_failures=2, breaker_reset_s=0.4)
    server.plan("primary", Fail(500), Fail(500))
    for _ in range(2):
        assert served_by(await model.ainvoke(PROMPT)) == "secondary"
    skipped = await model.ainvoke(PROMPT)
    assert server.calls("primary") == 2  # the open circuit made no request
    assert errors(skipped) == [("primary", "circuit_open")]
    time.sleep(0.5)
    recovered = await model.ainvoke(PROMPT)
    assert served_by(recovered) == "primary" and server.calls("primary") == 3


async def test_without_the_offline_fallback_the_last_failure_is_raised(
    server: OpenAIServer, chain: Chains
) -> None:
    server.plan("primary", Fail(503), Fail(503), Fail(503))
    with pytest.raises(ModelCallError) as caught:
        await chain(fallbacks=(), offline_fallback=False).ainvoke(PROMPT)
    assert caught.value.kind == "server" and caught.value.status == 503


async def test_a_slow_first_token_counts_as_a_timeout(server: OpenAIServer, chain: Chains) -> None:
    server.plan("primary", Reply("late", delay_s=2.0))
    reply = await chain(timeout_s=0.3, deadline_s=2.0, max_retries=0).ainvoke(PROMPT)
    assert served_by(reply) == "secondary" and errors(reply) == [("primary", "timeout")]


def test_the_chain_refuses_synchronous_calls_clearly(chain: Chains) -> None:
    with pytest.raises(NotImplementedError, match="asynchronous: use ainvoke"):
        chain().invoke(PROMPT)


def test_binding_the_same_tools_again_reuses_the_bound_chain(chain: Chains) -> None:
    model = chain()
    bound = model.bind_tools([CALC])
    assert model.bind_tools([CALC]) is bound
    assert model.bind_tools([CALC], tool_choice="calculator") is not bound


@pytest.mark.parametrize(
    "plan",
    [
        Reply("Readers never block writers. [S1]"),
        ToolCalls([("calculator", '{"expression": "2+2"}')]),
    ],
    ids=["text", "tool-call"],
)
async def test_an_unobserved_call_skips_the_attempts_own_run_and_gets_the_same_reply(
    server: OpenAIServer, chain: Chains, monkeypatch: pytest.MonkeyPatch, plan: Any
) -> None:
    unobserved: list[str] = []
    real = StreamingChatOpenAI.astream_unobserved

    def spy(self: StreamingChatOpenAI, *args: Any, **kwargs: Any) -> Any:
        unobserved.append(self.model_name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StreamingChatOpenAI, "astream_unobserved", spy)
    model = chain().bind_tools([CALC])
    server.plan("primary", plan)
    quiet = await model.ainvoke(PROMPT)
    assert unobserved == ["primary"]
    server.plan("primary", plan)
    tokens = Tokens()
    watched = await model.ainvoke(PROMPT, {"callbacks": [tokens]})
    assert unobserved == ["primary"]  # a callback listens: the attempt runs as a traced child
    assert tokens.chunks
    assert quiet.text == watched.text
    calls = [[(c["name"], c["args"]) for c in m.tool_calls] for m in (quiet, watched)]
    assert calls[0] == calls[1]
    assert quiet.usage_metadata == watched.usage_metadata
    for key in ("finish_reason", "model_name", "served_by"):
        assert quiet.response_metadata[key] == watched.response_metadata[key]
    first, second = (r for r in server.requests if r["model"] == "primary")
    assert first == second  # the same request on the wire

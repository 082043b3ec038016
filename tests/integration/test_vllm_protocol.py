"""The client side of vLLM's OpenAI protocol: streaming, tool-call deltas, settings, graph."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from app.context import Context
from app.graphs.agent import compile_agent
from app.llm.factory import build_models, openai_model
from app.llm.structured import StructuredOutputError, ainvoke_structured
from app.llm.tiers import ModelSet, TierChoice
from app.nodes.route import pick_tier
from app.resources import Resources, use_resources
from app.retrieval.types import Chunk
from app.settings import LLMSettings, ModelEndpoint, Settings, load_settings
from app.turns import Answer, Token, ask, stream_ask
from tests.openai_server import Fail, Hang, OpenAIServer, Reply, Stall, ToolCalls, openai_server

pytestmark = pytest.mark.integration

ARGS = [
    {"expression": "2 * (3 + 4)", "note": 'quote " and unicode Zürich ✓'},
    {"timezone": "Europe/Paris", "nested": {"list": [1, 2.5, None, True], "empty": {}}},
]
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("calculator", "current_time")
]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with openai_server() as srv:
        yield srv


@pytest.fixture
async def models(server: OpenAIServer) -> AsyncIterator[list[ModelSet]]:
    server.reset()
    built: list[ModelSet] = []
    yield built
    for model_set in built:
        await model_set.aclose()


def build(built: list[ModelSet], cfg: LLMSettings) -> ModelSet:
    model_set = build_models(cfg)
    built.append(model_set)
    return model_set


def cfg_for(server: OpenAIServer, **fields: object) -> LLMSettings:
    return LLMSettings.model_validate(
        {"base_url": server.base_url, "model": "vllm", "timeout_s": 5.0, **fields}
    )


async def test_text_arrives_in_vllm_chunks_and_assembles(
    server: OpenAIServer, models: list[ModelSet]
) -> None:
    text = "Readers do not block writers in WAL mode, and writers do not block readers."
    server.plan("vllm", Reply(text, piece=5))
    model = openai_model(ModelEndpoint(model="vllm"), cfg_for(server))
    chunks = [c async for c in model.astream([HumanMessage("q")])]
    await model.aclose()  # type: ignore[attr-defined]
    assert len([c for c in chunks if c.text]) == math.ceil(len(text) / 5)
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk) and total.text == text
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.usage_metadata and total.usage_metadata["output_tokens"] > 0
    assert server.requests[-1]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fragment", [1, 3, 8])
async def test_tool_call_arguments_arriving_in_fragments_are_assembled(
    server: OpenAIServer, models: list[ModelSet], fragment: int
) -> None:
    calls = [("calculator", json.dumps(ARGS[0])), ("current_time", json.dumps(ARGS[1]))]
    server.plan("vllm", ToolCalls(calls, fragment=fragment, text="Let me check."))
    chain = build(models, cfg_for(server)).default.model.bind_tools(TOOLS)
    reply = await chain.ainvoke([HumanMessage("q")])
    assert reply.response_metadata["served_by"].startswith("vllm@")  # no fallback was needed
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", ARGS[0]),
        ("current_time", ARGS[1]),
    ]
    assert all(c["id"].startswith("chatcmpl-tool-") for c in reply.tool_calls)
    assert reply.text == "Let me check."
    assert [t["function"]["name"] for t in server.requests[-1]["tools"]] == [
        "calculator",
        "current_time",
    ]


async def test_decoding_parameters_of_a_request_reach_the_server(
    server: OpenAIServer, models: list[ModelSet], resources: Resources
) -> None:
    model_set = build(models, cfg_for(server, temperature=0.2))
    with use_resources(replace(resources, chat_model=model_set.default.model, models=model_set)):
        agent = compile_agent(InMemorySaver())
        ctx = Context(temperature=0.7, top_p=0.9, max_tokens=64, stop=["END"], seed=7)
        await ask(agent, "hello there", context=ctx, thread_id="d", max_chars=1000)
        sent = server.requests[-1]
        assert (sent["temperature"], sent["top_p"], sent["seed"]) == (0.7, 0.9, 7)
        assert (sent["max_completion_tokens"], sent["stop"]) == (64, ["END"])
        await ask(agent, "hello again", context=Context(), thread_id="e", max_chars=1000)
    defaults = server.requests[-1]
    assert defaults["temperature"] == 0.2 and "seed" not in defaults and "stop" not in defaults


async def test_tokens_stream_from_the_server_through_the_graph(
    server: OpenAIServer, models: list[ModelSet], resources: Resources
) -> None:
    text = "SQLite checkpoints the WAL at 1000 pages [S1]."
    resources.retriever.vectors.upsert(
        [
            Chunk(
                "c1",
                "d1",
                "t1",
                "wal.md",
                "SQLite checkpoints the WAL at 1000 pages.",
                (0, 41),
                "h",
            )
        ],
        resources.embedder.embed_documents(["SQLite checkpoints the WAL at 1000 pages."]),
    )
    server.plan("vllm", Reply(text, piece=3, gap_s=0.01))
    model_set = build(models, cfg_for(server))
    with use_resources(replace(resources, chat_model=model_set.default.model, models=model_set)):
        agent = compile_agent(InMemorySaver())
        events = [
            event
            async for event in stream_ask(
                agent,
                "When does SQLite checkpoint the WAL?",
                context=Context(tenant_id="t1"),
                thread_id="s",
                max_chars=1000,
            )
        ]
    tokens = [e for e in events if isinstance(e, Token)]
    (answer,) = [e for e in events if isinstance(e, Answer)]
    # The output guard releases the text as it streams, holding back only the word that
    # could still become a finding, so the server's 3-character pieces arrive about a word
    # at a time: several tokens, nothing lost, nothing reordered.
    assert len(tokens) >= len(text.split()) - 2 and "".join(t.text for t in tokens) == text
    assert answer.answer == text and [c["source"] for c in answer.citations] == ["wal.md"]
    assert "[S1] wal.md" in server.requests[-1]["messages"][0]["content"]


async def test_the_environment_sets_the_primary_endpoint(
    server: OpenAIServer,
    models: list[ModelSet],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("RAGENT_LLM_MODEL", "from-env")
    monkeypatch.setenv("RAGENT_LLM_API_KEY", "sk-from-env")
    monkeypatch.setenv("RAGENT_LLM_TIMEOUT_S", "0.5")
    cfg = load_settings().llm
    model = build(models, cfg).default.model
    reply = await model.ainvoke([HumanMessage("hi")])
    assert reply.text == "Hello from from-env."
    assert server.requests[-1]["model"] == "from-env"
    assert server.headers[-1]["authorization"] == "Bearer sk-from-env"
    server.plan("from-env", Hang())
    started = time.monotonic()
    reply = await model.ainvoke([HumanMessage("hi")])
    assert time.monotonic() - started < 0.5 + 1.0
    assert reply.response_metadata["served_by"] == "offline"


async def test_structured_output_is_repaired_once_then_refused(
    server: OpenAIServer, models: list[ModelSet]
) -> None:
    model = build(models, cfg_for(server, offline_fallback=False)).default.model
    server.plan("vllm", Reply('{"tier": "huge"}'), Reply('```json\n{"tier": "code"}\n```'))
    choice = await ainvoke_structured(model, [HumanMessage("def f(): pass")], TierChoice)
    assert choice.tier == "code"
    first, repair = server.requests[-2:]
    assert first["response_format"]["json_schema"]["name"] == "TierChoice"
    assert "not valid (tier:" in repair["messages"][-1]["content"]
    assert repair["messages"][-2] == {"role": "assistant", "content": '{"tier": "huge"}'}
    server.plan("vllm", Reply("no json here"), Reply('{"tier": 3}'))
    with pytest.raises(StructuredOutputError, match="invalid after one repair"):
        await ainvoke_structured(model, [HumanMessage("q")], TierChoice)


async def test_the_llm_router_classifies_and_falls_back_to_the_rules(
    server: OpenAIServer, models: list[ModelSet], resources: Resources
) -> None:
    cfg = cfg_for(server, router="llm", tiers={"small": {"model": "small"}})
    model_set = build(models, cfg)
    settings = resources.settings.model_copy(update={"llm": cfg})
    routed = replace(resources, settings=settings, chat_model=model_set.default.model)
    routed = replace(routed, models=model_set)
    server.plan("small", Reply('{"tier": "large", "reason": "multi-step"}'))
    assert await pick_tier("What is WAL?", routed) == "large"
    assert server.requests[-1]["model"] == "small"
    server.plan("small", Fail(401))
    assert await pick_tier("What is WAL?", routed) == "small"  # the rules: short question


async def test_a_stream_that_breaks_off_is_restarted_for_the_caller(
    server: OpenAIServer, models: list[ModelSet], resources: Resources
) -> None:
    cfg = cfg_for(
        server, stall_timeout_s=0.5, max_retries=0, deadline_s=5.0, fallbacks=[{"model": "backup"}]
    )
    model_set = build(models, cfg)
    server.plan("vllm", Stall("The first model starts and stops", after=3))
    server.plan("backup", Reply("The backup answers.", piece=5))
    with use_resources(replace(resources, chat_model=model_set.default.model, models=model_set)):
        agent = compile_agent(InMemorySaver())
        events = [
            e
            async for e in stream_ask(
                agent, "hello there", context=Context(), thread_id="r", max_chars=1000
            )
        ]
    tokens = [e for e in events if isinstance(e, Token)]
    restart = next(i for i, t in enumerate(tokens) if t.restart)
    # 12 characters came before the stall; the guard had released the whole words of them.
    assert "".join(t.text for t in tokens[:restart]) == "The first "
    assert "".join(t.text for t in tokens[restart:]) == "The backup answers."
    final = events[-1]
    assert isinstance(final, Answer) and final.usage.get("completion_tokens", 0) > 0
    assert replace(final, usage={}, model_calls=[]) == Answer(
        answer="The backup answers.", thread_id="r"
    )
    # Only the model that answered counts: the attempt that broke off sent no usage.
    assert [(c["role"], c["model"]) for c in final.model_calls] == [("answer", "backup")]

"""Every model call of a turn is counted once, in its role, whoever served it."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from app.llm.factory import build_models
from app.llm.offline.answerer import MODEL_NAME, ExtractiveAnswerer
from app.llm.usage import metered, model_role, record_call
from app.settings import LLMSettings
from tests.openai_server import OpenAIServer, Reply


async def test_chain_calls_are_counted_with_their_roles(model: OpenAIServer) -> None:
    cfg = LLMSettings(base_url=model.base_url, model="m", max_retries=0, offline_fallback=False)
    models = build_models(cfg)
    chat = models.default.model
    model.plan("m", Reply("one two three"), Reply("four"))

    try:
        with metered() as ledger:
            await chat.ainvoke([HumanMessage("first question")])
            with model_role("memory"):
                await chat.ainvoke([HumanMessage("second")])
    finally:
        await models.aclose()

    assert [(c["role"], c["model"]) for c in ledger.calls] == [("answer", "m"), ("memory", "m")]
    reported = [(s.prompt_tokens, s.completion_tokens) for s in model.streams]
    assert [(c["prompt_tokens"], c["completion_tokens"]) for c in ledger.calls] == reported
    totals = ledger.totals()
    assert totals["total_tokens"] == sum(p + c for p, c in reported)


async def test_an_offline_fallback_is_counted_once(model: OpenAIServer) -> None:
    cfg = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0, timeout_s=1)
    models = build_models(cfg)
    try:
        with metered() as ledger:
            await models.default.model.ainvoke([HumanMessage("hello there")])
    finally:
        await models.aclose()

    assert [c["model"] for c in ledger.calls] == [MODEL_NAME]


def test_no_ledger_records_nothing() -> None:
    record_call("m@http://x", {"input_tokens": 1, "output_tokens": 1})
    with metered() as ledger:
        ExtractiveAnswerer().invoke([HumanMessage("hi")])
        record_call("m@http://secret-host:8000/v1", None)
    assert [c["model"] for c in ledger.calls] == [MODEL_NAME, "m"]

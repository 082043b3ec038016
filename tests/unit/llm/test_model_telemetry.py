"""A model call's telemetry: GenAI span attributes without URLs, context length and rate."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.llm.factory import build_models
from app.observability.metrics import REGISTRY
from app.settings import LLMSettings
from tests.openai_server import OpenAIServer, Reply


def _sample(name: str, **labels: str) -> float:
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_a_model_call_follows_the_genai_conventions_and_feeds_the_histograms(
    model: OpenAIServer, spans: InMemorySpanExporter
) -> None:
    cfg = LLMSettings(base_url=model.base_url, model="m", max_retries=0, offline_fallback=False)
    models = build_models(cfg)
    label = f"m@{model.base_url}"
    counts = {
        name: _sample(f"{name}_count", model=label)
        for name in ("ragent_model_prompt_tokens", "ragent_model_output_tokens_per_second")
    }
    prompt_sum = _sample("ragent_model_prompt_tokens_sum", model=label)
    model.plan("m", Reply("one two three four five", delay_s=0.05))
    try:
        await models.default.model.ainvoke([HumanMessage("a question")])
    finally:
        await models.aclose()

    (stream,) = model.streams
    assert stream.prompt_tokens > 0 and stream.completion_tokens > 0
    for name, before in counts.items():
        assert _sample(f"{name}_count", model=label) == before + 1
    assert _sample("ragent_model_prompt_tokens_sum", model=label) == prompt_sum + (
        stream.prompt_tokens
    )
    call = next(s for s in spans.get_finished_spans() if s.name == "model.call")
    attributes = dict(call.attributes or {})
    assert (
        attributes.items()
        >= {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "m",
            "gen_ai.response.model": "m",
            "gen_ai.usage.input_tokens": stream.prompt_tokens,
            "gen_ai.usage.output_tokens": stream.completion_tokens,
        }.items()
    )
    for s in spans.get_finished_spans():
        assert not any(model.base_url in str(v) for v in (s.attributes or {}).values())

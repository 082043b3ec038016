"""What the chat-model fallback chain reports: first tokens, replies, fallbacks, failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.observability.metrics import (
    FALLBACKS,
    MODEL_OUTPUT_RATE,
    MODEL_PROMPT_TOKENS,
    MODEL_SECONDS,
    MODEL_TOKENS,
    MODEL_TTFT,
    RECOVERED_TOOL_CALLS,
    model_label,
    model_name,
    record_error,
)
from app.observability.tracing import annotate

__all__ = [
    "OFFLINE_PROVIDER",
    "attempt_failed",
    "first_token",
    "moved_on",
    "provider_of",
    "replied",
    "tool_calls_recovered",
]

OFFLINE_PROVIDER = "ragent.offline"
"""``gen_ai.provider.name`` of the offline answerer (every remote model speaks OpenAI's API)."""


def provider_of(model: str) -> str:
    """Return the GenAI provider name of a model of the chain (``model@base_url`` or offline)."""
    return "openai" if "@" in model else OFFLINE_PROVIDER


def first_token(model: str, seconds: float) -> None:
    """Record a model's time to its first chunk (histogram, and the current span)."""
    MODEL_TTFT.labels(model_label(model)).observe(seconds)
    annotate(ttft_ms=round(seconds * 1000, 1))


def replied(
    served_by: str, usage: Mapping[str, Any] | None, fallbacks: int, seconds: float
) -> None:
    """Record a chain's answer: who served it, its tokens, rate, failed attempts, duration.

    The current span (``model.call``) gets the OpenTelemetry GenAI attributes; the
    model attributes carry the model's name, never its URL.

    Args:
        served_by: The model that answered (``model@base_url`` or ``offline``).
        usage: The reply's ``usage_metadata`` (None when the model reported none).
        fallbacks: Failed attempts before it.
        seconds: The whole call, failed attempts included.
    """
    label = model_label(served_by)
    tokens_in = int((usage or {}).get("input_tokens", 0))
    tokens_out = int((usage or {}).get("output_tokens", 0))
    MODEL_TOKENS.labels(label, "in").inc(tokens_in)
    MODEL_TOKENS.labels(label, "out").inc(tokens_out)
    MODEL_SECONDS.labels(label).observe(seconds)
    if usage is not None:  # a model that reports no usage has no context length or rate
        MODEL_PROMPT_TOKENS.labels(label).observe(tokens_in)
        if tokens_out and seconds > 0:
            MODEL_OUTPUT_RATE.labels(label).observe(tokens_out / seconds)
    annotate(
        provider=provider_of(served_by),
        served_by=model_name(served_by),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        fallbacks=fallbacks,
    )


def moved_on(failed: tuple[str, str] | None, to: str) -> None:
    """Count a fallback activation from a failed model to the next one, if one failed.

    Args:
        failed: ``(model, failure kind)`` of the last failed model, or None.
        to: The model tried next (``offline`` for the offline answerer).
    """
    if failed is not None:
        FALLBACKS.labels(model_label(failed[0]), model_label(to), failed[1]).inc()


def attempt_failed(kind: str) -> None:
    """Count a failed model attempt by failure kind, and mark the current span."""
    record_error("model", kind)
    annotate(outcome=kind)


def tool_calls_recovered(model: str, fmt: str, calls: int) -> None:
    """Count tool calls a model wrote as text and that were recovered, by format."""
    RECOVERED_TOOL_CALLS.labels(model_label(model), fmt).inc(calls)
    annotate(recovered_tool_calls=fmt)

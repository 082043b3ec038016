"""Process-wide Prometheus metrics of the graph and its engines.

They live in :data:`REGISTRY`, apart from the HTTP API's own registry; the API's
``/metrics`` renders both. Label values are bounded: node and engine names, the
configured model names, tool names from the registry (anything else is ``unknown``),
outcomes and error kinds. Never a tenant, a user or any text.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Final, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "CACHE",
    "ERRORS",
    "FALLBACKS",
    "MODEL_OUTPUT_RATE",
    "MODEL_PROMPT_TOKENS",
    "MODEL_SECONDS",
    "MODEL_TOKENS",
    "MODEL_TTFT",
    "NODE_SECONDS",
    "REGISTRY",
    "RECOVERED_TOOL_CALLS",
    "RAG_ANSWERS",
    "RETRIEVAL_SECONDS",
    "SAFETY_BLOCKS",
    "TOOL_CALLS",
    "RagOutcome",
    "SafetyKind",
    "count_rag_answer",
    "count_redactions",
    "count_safety_block",
    "count_tool_block",
    "model_label",
    "model_name",
    "record_error",
]

REGISTRY: Final = CollectorRegistry()
"""The graph's and the engines' metrics (the HTTP API keeps its own registry)."""

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

NODE_SECONDS: Final = Histogram(
    "ragent_node_seconds",
    "Time spent in each graph node.",
    ["node"],
    buckets=_FAST[2:] + _SLOW[-4:],
    registry=REGISTRY,
)
RETRIEVAL_SECONDS: Final = Histogram(
    "ragent_retrieval_seconds",
    "Retrieval latency by engine (embed: query embedding, vector, keyword, rerank).",
    ["engine"],
    buckets=_FAST,
    registry=REGISTRY,
)
CACHE: Final = Counter(
    "ragent_query_cache_total",
    "Query-embedding cache lookups by result (hit, miss).",
    ["result"],
    registry=REGISTRY,
)
MODEL_SECONDS: Final = Histogram(
    "ragent_model_call_seconds",
    "Chat model calls through the fallback chain, by the model that answered.",
    ["model"],
    buckets=_SLOW,
    registry=REGISTRY,
)
MODEL_TTFT: Final = Histogram(
    "ragent_model_time_to_first_token_seconds",
    "Time from sending a request to a chat model to its first streamed chunk.",
    ["model"],
    buckets=_SLOW,
    registry=REGISTRY,
)
MODEL_TOKENS: Final = Counter(
    "ragent_model_tokens_total",
    "Tokens the chat models reported, by model and direction (in: prompt, out: reply).",
    ["model", "direction"],
    registry=REGISTRY,
)
MODEL_OUTPUT_RATE: Final = Histogram(
    "ragent_model_output_tokens_per_second",
    "Output tokens per second of each model reply (its output tokens over the call's time).",
    ["model"],
    buckets=(1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640, 1280),
    registry=REGISTRY,
)
MODEL_PROMPT_TOKENS: Final = Histogram(
    "ragent_model_prompt_tokens",
    "Context length of each model call: the prompt tokens the model reported.",
    ["model"],
    buckets=(64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072),
    registry=REGISTRY,
)
FALLBACKS: Final = Counter(
    "ragent_model_fallbacks_total",
    "Moves from a failed chat model to the next one (or offline), by failure kind.",
    ["from", "to", "reason"],
    registry=REGISTRY,
)
TOOL_CALLS: Final = Counter(
    "ragent_tool_calls_total",
    "Tool calls by tool and outcome (ok, error, timeout, denied, rate_limited, ...).",
    ["tool", "outcome"],
    registry=REGISTRY,
)
RECOVERED_TOOL_CALLS: Final = Counter(
    "ragent_model_recovered_tool_calls_total",
    "Tool calls a model wrote as text that were recovered into tool calls, by format.",
    ["model", "format"],
    registry=REGISTRY,
)
ERRORS: Final = Counter(
    "ragent_errors_total",
    "Errors by component (http, node, model, rerank, stream) and type.",
    ["component", "type"],
    registry=REGISTRY,
)

RagOutcome = Literal["cited", "uncited", "refused"]
"""How a retrieval turn's answer ended: it cites a retrieved source, cites none, or
declines ("I don't know", a refusal)."""
RAG_ANSWERS: Final = Counter(
    "ragent_rag_answers_total",
    "Retrieval turns by their answer's outcome (cited, uncited, refused) and by what served "
    "it (model, cache), once per turn.",
    ["outcome", "served"],
    registry=REGISTRY,
)
SafetyKind = Literal[
    "input_injection",
    "input_too_long",
    "input_pii",
    "input_secret",
    "output_pii",
    "output_secret",
    "output_prompt_leak",
    "tool_denied",
    "tool_not_approved",
    "tool_invalid_arguments",
    "tool_runaway",
]
"""Every kind of ``ragent_safety_blocks_total``: the input guard's blocks and redactions,
the output guard's redactions and prompt-leak refusals, and tool calls a policy, the user,
argument validation or the runaway checks stopped."""
SAFETY_BLOCKS: Final = Counter(
    "ragent_safety_blocks_total",
    "Guard actions by kind: input blocked or redacted, output redacted or refused, tool "
    "calls not run.",
    ["kind"],
    registry=REGISTRY,
)
for _outcome in get_args(RagOutcome):  # every series exists from the start, at 0
    for _served in ("model", "cache"):
        RAG_ANSWERS.labels(_outcome, _served)
for _kind in get_args(SafetyKind):
    SAFETY_BLOCKS.labels(_kind)

_TOOL_BLOCKS: Final[dict[str, SafetyKind]] = {
    "denied": "tool_denied",
    "rejected": "tool_not_approved",
    "invalid_arguments": "tool_invalid_arguments",
    "stopped": "tool_runaway",
}


def count_safety_block(kind: SafetyKind) -> None:
    """Count one guard action of ``kind``."""
    SAFETY_BLOCKS.labels(kind).inc()


def count_redactions(where: Literal["input", "output"], kinds: Iterable[str]) -> None:
    """Count a redaction of ``where`` once per class: ``secret``, or personal data.

    Args:
        where: The input guard's redaction of a question, or the output guard's of a reply.
        kinds: The redacted kinds (:data:`app.safety.KINDS`), repeats allowed.
    """
    for cls in {"secret" if kind == "secret" else "pii" for kind in kinds}:
        SAFETY_BLOCKS.labels(f"{where}_{cls}").inc()


def count_tool_block(outcome: str) -> None:
    """Count a tool call that a guard stopped, by its outcome (others are not blocks)."""
    kind = _TOOL_BLOCKS.get(outcome)
    if kind is not None:
        SAFETY_BLOCKS.labels(kind).inc()


def count_rag_answer(*, cited: bool, refused: bool, cache_hit: bool) -> None:
    """Count one finished retrieval turn: a refusal, else cited or uncited.

    Args:
        cited: The answer cites at least one of the turn's retrieved sources.
        refused: The answer declines (a refusal or "I don't know").
        cache_hit: The answer cache served it (a stored answer, cited when stored).
    """
    outcome: RagOutcome = "refused" if refused else "cited" if cited else "uncited"
    RAG_ANSWERS.labels(outcome, "cache" if cache_hit else "model").inc()


def record_error(component: str, kind: str) -> None:
    """Count one error of ``kind`` (an error code, failure kind or exception class)."""
    ERRORS.labels(component, kind).inc()


@lru_cache(maxsize=256)
def model_label(name: str) -> str:
    """Return a model name (``model@base_url``) fit for a label: credentials in the URL dropped.

    Args:
        name: The model's name, as the fallback chain records it.

    Returns:
        The name with any ``user:password@`` removed from its URL.
    """
    model, sep, url = name.partition("@")
    if not sep or "://" not in url:
        return name
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{model}@{urlunsplit(parts._replace(netloc=netloc))}"


def model_name(name: str) -> str:
    """Return the model of a ``model@base_url`` name, without its URL (for span attributes).

    Args:
        name: The model's name, as the fallback chain records it.

    Returns:
        The part before ``@``.
    """
    return name.partition("@")[0]

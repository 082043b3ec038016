"""Process-wide Prometheus metrics of the graph and its engines.

They live in :data:`REGISTRY`, apart from the HTTP API's own registry; the API's
``/metrics`` renders both. Label values are bounded: node and engine names, the
configured model names, tool names from the registry (anything else is ``unknown``),
outcomes and error kinds. Never a tenant, a user or any text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
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
    "RETRIEVAL_SECONDS",
    "TOOL_CALLS",
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

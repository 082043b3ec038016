"""What a failed model call means: retry it, fall back, or give up; and the circuit breakers.

Timeouts, stalled streams, connection errors, 5xx and malformed responses are retried
with jittered exponential backoff, then the next model in the chain is tried. A 408 or
429 falls back at once. Any other 4xx is the caller's mistake (a bad key, a bad
parameter): it is never retried and is raised, so a misconfiguration is not hidden.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import httpx
from purgatory import AsyncCircuitBreakerFactory
from pydantic import ValidationError

__all__ = ["FailureKind", "ModelCallError", "breaker_factory", "classify"]

FailureKind = Literal[
    "timeout",
    "stall",
    "connection",
    "server",
    "overloaded",
    "malformed",
    "rejected",
    "circuit_open",
    "error",
]

_RETRYABLE: frozenset[FailureKind] = frozenset(
    {"timeout", "stall", "connection", "server", "malformed"}
)
_TRIPS_BREAKER: frozenset[FailureKind] = frozenset(
    {"timeout", "stall", "connection", "server", "overloaded"}
)


class ModelCallError(Exception):
    """A model call that failed, with what the failure means for the fallback chain.

    Attributes:
        kind: What went wrong.
        status: The HTTP status, when the server answered with one.
    """

    def __init__(self, kind: FailureKind, detail: str, *, status: int | None = None) -> None:
        """Describe a failure; ``detail`` must not contain prompt or document text."""
        super().__init__(f"{kind}: {detail}")
        self.kind: FailureKind = kind
        self.status = status
        self.detail = detail

    @property
    def retryable(self) -> bool:
        """Whether the same model may be asked again (never for a 4xx)."""
        return self.kind in _RETRYABLE

    @property
    def falls_back(self) -> bool:
        """Whether the next model in the chain should be tried."""
        return self.kind != "rejected"

    @property
    def trips_breaker(self) -> bool:
        """Whether the failure counts against the endpoint's circuit breaker."""
        return self.kind in _TRIPS_BREAKER


def _status_kind(status: int) -> FailureKind:
    if status >= 500:
        return "server"
    return "overloaded" if status in (408, 429) else "rejected"


def classify(exc: BaseException) -> ModelCallError:
    """Map an exception raised by a chat-model call to a :class:`ModelCallError`.

    Args:
        exc: What the call raised (openai, httpx, asyncio or parsing errors).

    Returns:
        ``exc`` itself when it already is one, else a new error naming its kind.
    """
    if isinstance(exc, ModelCallError):
        return exc
    import openai  # only on failures: keeps the offline profile from importing it

    name = type(exc).__name__
    if isinstance(exc, openai.APIStatusError):
        return ModelCallError(_status_kind(exc.status_code), name, status=exc.status_code)
    if isinstance(exc, TimeoutError | openai.APITimeoutError | httpx.TimeoutException):
        return ModelCallError("timeout", name)
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ModelCallError("connection", name)
    if isinstance(exc, openai.APIResponseValidationError):
        return ModelCallError("malformed", name)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return ModelCallError("server", name)
    if isinstance(exc, json.JSONDecodeError | ValidationError | ValueError | KeyError):
        return ModelCallError("malformed", name)
    return ModelCallError("error", name)


def breaker_factory(*, failures: int, reset_s: float) -> AsyncCircuitBreakerFactory:
    """Return the circuit breakers of one process, one circuit per endpoint.

    A circuit opens after ``failures`` failures in a row that are the endpoint's fault
    (never a 4xx or a cancelled request), refuses calls for ``reset_s`` seconds, then
    lets calls through again: a success closes it, a failure opens it again.

    Args:
        failures: Consecutive failures that open a circuit.
        reset_s: How long an open circuit refuses calls.

    Returns:
        A purgatory factory; ``await factory.get_breaker(name)`` gives one circuit.
    """
    return AsyncCircuitBreakerFactory(
        default_threshold=failures,
        default_ttl=reset_s,
        exclude=[
            (ModelCallError, lambda exc: not exc.trips_breaker),
            asyncio.CancelledError,
        ],
    )

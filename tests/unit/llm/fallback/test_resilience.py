"""What each failure means for the fallback chain."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from app.llm.fallback.resilience import ModelCallError, classify

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def status_error(code: int) -> openai.APIStatusError:
    return openai.APIStatusError("x", response=httpx.Response(code, request=REQUEST), body=None)


@pytest.mark.parametrize(
    ("exc", "kind", "retry", "fall_back", "trips"),
    [
        (status_error(500), "server", True, True, True),
        (status_error(503), "server", True, True, True),
        (status_error(429), "overloaded", False, True, True),
        (status_error(408), "overloaded", False, True, True),
        (status_error(400), "rejected", False, False, False),
        (status_error(401), "rejected", False, False, False),
        (status_error(404), "rejected", False, False, False),
        (TimeoutError(), "timeout", True, True, True),
        (openai.APITimeoutError(REQUEST), "timeout", True, True, True),
        (openai.APIConnectionError(request=REQUEST), "connection", True, True, True),
        (httpx.ConnectError("refused"), "connection", True, True, True),
        (httpx.ReadTimeout("slow"), "timeout", True, True, True),
        (openai.APIError("in-stream error", REQUEST, body=None), "server", True, True, True),
        (json.JSONDecodeError("bad", "{", 0), "malformed", True, True, False),
        (RuntimeError("bug"), "error", False, True, False),
    ],
)
def test_classify(exc: BaseException, kind: str, retry: bool, fall_back: bool, trips: bool) -> None:
    err = classify(exc)
    assert (err.kind, err.retryable, err.falls_back, err.trips_breaker) == (
        kind,
        retry,
        fall_back,
        trips,
    )


def test_status_is_kept_and_a_classified_error_is_returned_as_is() -> None:
    assert classify(status_error(502)).status == 502
    err = ModelCallError("stall", "no chunk")
    assert classify(err) is err

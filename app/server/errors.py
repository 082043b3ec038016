"""One error shape for every response of the API, OpenAI's, with OpenAI's statuses.

The shape: ``{"error": {"message", "type", "param", "code"}}``.
``type`` is the class of error (OpenAI's names: ``invalid_request_error``,
``authentication_error``, ...); ``param`` names the offending request field, or is null;
``code`` is a stable machine-readable reason. Statuses are OpenAI's too: a request that
fails validation is a 400 (``openai.BadRequestError``), never a 422.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from app.llm.fallback.resilience import ModelCallError
from app.observability.metrics import record_error
from app.retrieval.retriever import RetrievalUnavailable

__all__ = [
    "BAD_MODEL_OUTPUT",
    "CONFLICT",
    "ERROR_RESPONSES",
    "NOT_FOUND",
    "SERVER_RESPONSES",
    "ApiError",
    "error_body",
    "error_response",
    "install",
    "owns",
    "route_of",
]

log = logging.getLogger("ragent.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "unavailable_error",
    504: "timeout_error",
}
_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal_error"}

OWN_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics")
"""Paths this API answers; under ``langgraph dev`` every other path is the server's own."""


def owns(path: str) -> bool:
    """Whether ``path`` belongs to this API (and gets its error shape and middleware)."""
    return path.startswith(OWN_PREFIXES)


class ApiError(Exception):
    """An error answered with ``status`` and the API's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        kind: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the error; ``kind`` defaults to the status's error type.

        ``param`` names the request field at fault, as OpenAI's errors do.
        """
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind or _TYPES.get(status, "invalid_request_error")
        self.param = param
        self.headers = headers or {}


def error_body(message: str, kind: str, code: str, param: str | None = None) -> dict[str, Any]:
    """Return the error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: ApiError) -> JSONResponse:
    """Return the JSON response of an :class:`ApiError` (counted by its code)."""
    record_error("http", exc.code)
    body = error_body(exc.message, exc.kind, exc.code, exc.param)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _schema(status: int, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "example": error_body(
                    "...",
                    _TYPES.get(status, "invalid_request_error"),
                    "...",
                    "..." if status == 400 else None,
                )
            }
        },
    }


SERVER_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: _schema(413, "Body (by Content-Length) or message too large"),
    500: _schema(500, "Internal error (details are logged, never sent)"),
    503: _schema(503, "Starting, or no search engine answered; retry shortly"),
    504: _schema(504, "The response did not start within server.request_timeout_s"),
}
"""What every path of the API can answer, before or around its route (``/healthz`` too)."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _schema(
        400,
        "Invalid request (`param` names the field), text that is not valid "
        "Unicode, or a malformed Idempotency-Key",
    ),
    401: _schema(401, "Missing, malformed, unknown or revoked API key"),
    403: _schema(403, "The API key lacks the route's scope"),
    429: _schema(429, "Rate limited; retry after Retry-After seconds"),
    502: _schema(
        502,
        "The chat model failed with no offline answerer to stand in, or its answer missed "
        "response_format after one repair",
    ),
    **SERVER_RESPONSES,
}
"""What every ``/v1`` route can answer; routes add theirs (:data:`NOT_FOUND`, :data:`CONFLICT`)."""

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _schema(404, "No such resource, or not the API key's user's"),
}
BAD_MODEL_OUTPUT: dict[int | str, dict[str, Any]] = {
    502: _schema(
        502, "The model's answer did not conform to response_format, even after one repair"
    ),
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _schema(409, "Busy conversation, pending approval, or a reused Idempotency-Key"),
}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


def _routes(routes: Iterable[Any]) -> Iterator[Route]:
    """Every route, through included routers (FastAPI keeps them as nested routers)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(getattr(included, "routes", ()))


def route_of(scope: Any) -> str | None:
    """The template of the route a request matches (for requests refused before routing)."""
    for route in _routes(scope["app"].routes):
        if route.matches(dict(scope))[0] == Match.FULL:
            return str(route.path)
    return None


def _allowed(request: Request, headers: dict[str, str] | None) -> str:
    """Every method of the path, from all of its routes (Starlette names only the first's)."""
    methods: set[str] = set()
    for route in _routes(request.app.routes):
        if route.methods and route.matches(dict(request.scope))[0] != Match.NONE:
            methods |= route.methods
    if not methods:
        return (headers or {}).get("Allow", "")
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's "error parsing the body"
        # A body only one of this app's routes parsed: the LangGraph API's routes included.
        message = "body: the body is not valid UTF-8; send valid Unicode"
        return error_response(ApiError(exc.status_code, message, "invalid_text"))
    if not owns(request.url.path):  # a route of the LangGraph server keeps its own shape
        return await http_exception_handler(request, exc)
    code = _CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request, headers)}
    return error_response(ApiError(exc.status_code, message, code, headers=headers))


def _param(loc: Iterable[Any]) -> str | None:
    """OpenAI's name of a field: ``messages[0].role`` for ``("body", "messages", 0, "role")``."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    if parts and not isinstance(parts[0], str):  # a position in a body that is not JSON
        return None
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or None


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    param = _param(first.get("loc", ()))
    return error_response(ApiError(400, f"{where}: {message}", "invalid_request", param=param))


UNAVAILABLE = "no search engine answered; try again shortly"
"""The message of a turn whose retrieval found every engine down (its reasons are logged)."""


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("search unavailable on %s: %s", request.url.path, exc)
    return error_response(
        ApiError(503, UNAVAILABLE, "search_unavailable", headers={"Retry-After": "5"})
    )


async def _model_failed(request: Request, exc: Exception) -> Response:
    """The chat model failed and no offline answerer stands in (``llm.offline_fallback``)."""
    assert isinstance(exc, ModelCallError)
    log.warning("model call failed on %s: %s", request.url.path, exc.kind)
    if exc.kind in {"timeout", "stall"}:
        return error_response(ApiError(504, "the model did not answer in time", "model_timeout"))
    return error_response(ApiError(502, f"the model failed ({exc.kind})", "model_error"))


async def _crash(request: Request, exc: Exception) -> Response:
    # The exception's message may quote user input, so only its type and frames are logged.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s on %s\n%s", type(exc).__name__, request.url.path, frames)
    return error_response(ApiError(500, "internal server error", "internal_error"))


def _without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI spec less FastAPI's own 422s: a request that fails validation is a 400."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            for item in spec.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = spec.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        return app.openapi_schema or build()

    return openapi


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the API's shape (and the spec its statuses)."""
    app.openapi = _without_422(app)  # type: ignore[method-assign]
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RetrievalUnavailable, _unavailable)
    app.add_exception_handler(ModelCallError, _model_failed)
    app.add_exception_handler(Exception, _crash)

"""The checks every API request passes, as one ASGI middleware.

In order: body size by ``Content-Length`` (413), the API key (401), the key's token
bucket (429 with ``Retry-After``), a chunked body read up to the cap (413), then the
route under a timeout that stops once the response has started (504). Unhandled
errors become a 500 in the API's shape, logged without their message, which may quote
user input. Every response carries ``x-request-id``: the client's ``X-Request-Id`` when
it is a short token, else a new one (also in ``scope["state"]`` and the error log).
Paths outside the API (the LangGraph server's, under ``langgraph dev``)
pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import traceback
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.tracing import server_span
from app.safety.identity import safe_identity
from app.server.errors import ApiError, error_response, owns, route_of
from app.server.services import Services

__all__ = ["ApiGuard", "request_id", "throttle"]

log = logging.getLogger("ragent.server")

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _authorization(scope: Scope) -> str | None:
    """The ``Authorization`` header, or ``Bearer <X-Api-Key>`` (what ``langgraph_sdk`` sends)."""
    given = _header(scope, b"authorization")
    if given is None and (key := _header(scope, b"x-api-key")) is not None:
        return f"Bearer {key}"
    return given


def _tenant(scope: Scope) -> str | None:
    principal = scope.get("state", {}).get("principal")
    tenant = getattr(principal, "tenant_id", None)
    return safe_identity(tenant) if isinstance(tenant, str) else None


def request_id(scope: Scope) -> str:
    """The request's id: the client's ``X-Request-Id`` if it is a short token, else a new one."""
    given = _header(scope, b"x-request-id")
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return f"req_{uuid.uuid4().hex}"


def _with_request_id(send: Send, value: str) -> Send:
    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["x-request-id"] = value
        await send(message)

    return tagged


async def throttle(services: Services, bucket: str, holder: str) -> None:
    """Take a token from ``bucket`` (``server.rate_limit``), or refuse with a 429.

    Raises:
        ApiError: 429 ``rate_limited`` with ``Retry-After``.
    """
    allowed, retry, _ = await services.state.take(bucket, services.interval_s, services.burst)
    if not allowed:
        services.metrics.rate_limited.inc()
        wait = max(1, math.ceil(retry))
        raise ApiError(
            429,
            f"rate limit of {services.settings.server.rate_limit} for {holder} exceeded; "
            f"retry in {wait} s",
            "rate_limited",
            headers={"Retry-After": str(wait), "X-RateLimit-Remaining": "0"},
        )


class ApiGuard:
    """Size limits, auth, rate limits, the request timeout and the error shape."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        open_paths: tuple[str, ...] = (),
        key_paths: tuple[str, ...] = (),
    ) -> None:
        """Wrap ``app``.

        Args:
            app: The application.
            open_paths: Further path prefixes this API owns that need no key.
            key_paths: Further path prefixes this API owns that need a key, as ``/v1/``.
        """
        self.app = app
        self.key_paths = ("/v1/", *key_paths)
        self.extra_paths = (*open_paths, *key_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request."""
        path = scope["path"] if scope["type"] == "http" else ""
        if not (owns(path) or (self.extra_paths and path.startswith(self.extra_paths))):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        send = _with_request_id(send, rid)
        services: Services | None = getattr(scope["app"].state, "services", None)
        if services is None:
            await error_response(ApiError(503, "the API is starting", "starting"))(
                scope, receive, send
            )
            return
        metrics = services.metrics
        started_at = time.perf_counter()
        status = [500]
        metrics.in_flight.inc()
        # The run's root span, or the child of the caller's (traceparent). Hand-written, not
        # opentelemetry-instrumentation-asgi: that one records the full URL with its query,
        # the client's address and user agent, which the attribute allowlist keeps out.
        # bench/http_spans.py: it puts a planted e-mail and token (http.url), client address
        # (net.peer.ip) and user agent on the span, makes 3 spans a request against 1, and
        # takes 277 us a request against 151 us through the ASGI stack.
        with server_span(
            "http.request", scope.get("headers", ()), method=scope["method"]
        ) as traced:
            try:
                await self._serve(services, scope, receive, send, status)
            finally:
                metrics.in_flight.dec()
                # A request refused before routing (401, 429, 413) counts under its route.
                route = getattr(scope.get("route"), "path", None) or route_of(scope) or "unmatched"
                method = scope["method"]
                metrics.requests.labels(route, method, str(status[0])).inc()
                metrics.latency.labels(route, method).observe(time.perf_counter() - started_at)
                if traced.recording:
                    traced.set(http_route=route, status=status[0], tenant=_tenant(scope))

    async def _serve(
        self, services: Services, scope: Scope, receive: Receive, send: Send, status: list[int]
    ) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status[0] = int(message["status"])
                # Only while the route runs under it: an error response sent after the
                # ``async with`` has left finds the timeout finished, and rescheduling a
                # finished timeout raises, which would turn every error into a dropped
                # connection.
                if running is not None and not running.expired():
                    running.reschedule(None)  # a stream ends when its run does
            await send(message)

        running: asyncio.Timeout | None = None
        expired = False
        try:
            receive = await self._admit(services, scope, receive)
            async with asyncio.timeout(services.settings.server.request_timeout_s) as deadline:
                running = deadline
                try:
                    await self.app(scope, receive, tracked)
                finally:
                    running = None
                    expired = deadline.expired()
        except ApiError as exc:
            if not started:
                await error_response(exc)(scope, receive, tracked)
        except TimeoutError as exc:
            if expired:
                if not started:
                    timeout = services.settings.server.request_timeout_s
                    message = f"the request took longer than {timeout:g} s"
                    error = ApiError(504, message, "timeout")
                    await error_response(error)(scope, receive, tracked)
            else:  # a timeout of the route's own (a client, a wait) is an internal error
                await self._crashed(exc, scope, receive, tracked, started=started)
        except Exception as exc:  # noqa: BLE001 - last resort: the error shape, no message logged
            await self._crashed(exc, scope, receive, tracked, started=started)

    @staticmethod
    async def _crashed(
        exc: BaseException, scope: Scope, receive: Receive, send: Send, *, started: bool
    ) -> None:
        """Log an unhandled error (its type and frames only) and answer a plain 500.

        The error is not raised again: past this middleware, Starlette's last-resort
        handler would re-raise it to uvicorn, which then closes the keep-alive
        connection and drops the client's next request.
        """
        frames = "".join(traceback.format_tb(exc.__traceback__))
        rid = scope.get("state", {}).get("request_id")
        log.error("unhandled %s on %s (%s)\n%s", type(exc).__name__, scope["path"], rid, frames)
        if not started:
            error = ApiError(500, "internal server error", "internal_error")
            await error_response(error)(scope, receive, send)

    async def _admit(self, services: Services, scope: Scope, receive: Receive) -> Receive:
        """Run the checks before the route; returns the receive channel to use."""
        server = services.settings.server
        path: str = scope["path"]
        cap = server.max_upload_bytes if path == "/v1/ingest" else server.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            raise ApiError(413, f"the body is larger than {cap} bytes", "body_too_large")
        if path.startswith(self.key_paths):  # probes and /metrics are open
            principal = await services.auth.principal(_authorization(scope))
            scope.setdefault("state", {})["principal"] = principal
            if "end_users" not in principal.scopes:  # those: per end user, in app.server.deps
                await throttle(services, f"key:{principal.key_id}", "this API key")
        if length is None and scope["method"] in {"POST", "PUT", "PATCH"}:
            return await self._buffered(receive, cap)
        return receive

    @staticmethod
    async def _buffered(receive: Receive, cap: int) -> Receive:
        """Read a body sent without ``Content-Length``, refusing it past ``cap`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise ApiError(413, f"the body is larger than {cap} bytes", "body_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

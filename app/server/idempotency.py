"""``Idempotency-Key`` on POSTs: a retried request gets the first response, not a second run.

Records are per API key and idempotency key, and remember a fingerprint of the request
(method, path, query and body). The same key with the same request replays the stored
response (``Idempotent-Replayed: true``); for a stream, the run's buffered events from
the start. The same key with another request is a 409, and so is a retry while the
first request is still running. Responses of transient failures (409, 429, 5xx) are
not kept, so those can be retried with the same key.

The "still running" mark is a lease: it lapses ``LEASE_S`` after its last renewal, and a
heartbeat renews it while the request runs. A process killed mid-request (its mark is in
Redis, which outlives it) therefore holds the key for seconds, not for the request timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from app.server.auth import Principal
from app.server.errors import ApiError, error_response
from app.server.services import Services

__all__ = ["HEADER", "LEASE_S", "idempotent"]

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_TRANSIENT = {409, 429}
log = logging.getLogger(__name__)
LEASE_S = 10.0
"""How long a running request's mark outlives its last renewal (a dead process's mark)."""


async def _renew(services: Services, record: str, pending: str) -> None:
    """Keep the running mark alive while its request runs."""
    while True:
        await asyncio.sleep(LEASE_S / 3)
        try:
            await services.state.set(record, pending, LEASE_S)
        except Exception as exc:  # noqa: BLE001 - the request goes on; the next beat retries
            log.warning("idempotency lease not renewed: %s", type(exc).__name__)


async def _body_digest(request: Request) -> bytes:
    """The body, or for a form (which FastAPI parsed from the stream, unkept) its digest."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        return await request.body()
    digest = hashlib.sha256()
    for name, item in (await request.form()).multi_items():
        digest.update(json.dumps(name).encode() + b"\0")
        if isinstance(item, UploadFile):
            digest.update(json.dumps(["file", item.filename]).encode() + b"\0")
            while chunk := await item.read(1 << 20):
                digest.update(chunk)
            await item.seek(0)  # the route reads it again
        else:
            digest.update(json.dumps(item).encode())
        digest.update(b"\0")
    return digest.digest()


async def idempotent(
    request: Request,
    services: Services,
    principal: Principal,
    produce: Callable[[], Awaitable[Response]],
) -> Response:
    """Serve ``produce()`` once per idempotency key; replay it for retries.

    Raises:
        ApiError: 400 for a malformed key, 409 for a reused or busy one.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return await produce()
    if not _KEY.fullmatch(key):
        raise ApiError(400, f"{HEADER} must be 1 to 255 visible ASCII characters", "invalid_key")
    fingerprint = hashlib.sha256(
        b"\0".join(
            [request.method.encode(), request.url.path.encode(), request.url.query.encode()]
            + [await _body_digest(request)]
        )
    ).hexdigest()
    # An end user behind a shared key has keys of their own: theirs never replay another's.
    caller = (
        principal.key_id
        if principal.end_user is None
        else f"{principal.key_id}/{principal.end_user}"
    )
    record = f"idem:{caller}:{hashlib.sha256(key.encode()).hexdigest()}"
    pending = json.dumps({"fp": fingerprint, "state": "running"})
    if not await services.state.set(record, pending, LEASE_S, only_new=True):
        return await _replay(services, record, fingerprint)
    beat = asyncio.create_task(_renew(services, record, pending), name=f"lease {record}")
    try:
        try:
            response = await produce()
        except ApiError as exc:
            response = error_response(exc)
    except BaseException:
        await _stop(beat)
        await services.state.delete(record)
        raise
    await _stop(beat)
    await _keep(services, record, fingerprint, response)
    return response


async def _stop(beat: asyncio.Task[None]) -> None:
    beat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beat


async def _keep(services: Services, record: str, fingerprint: str, response: Response) -> None:
    server = services.settings.server
    run_id = response.headers.get("x-run-id")
    done: dict[str, str | int]
    if isinstance(response, StreamingResponse) and run_id:
        done = {"fp": fingerprint, "state": "done", "run": run_id}
        ttl = min(server.idempotency_ttl_s, server.events_ttl_s)
    elif response.status_code >= 500 or response.status_code in _TRANSIENT:
        await services.state.delete(record)
        return
    else:
        done = {
            "fp": fingerprint,
            "state": "done",
            "status": response.status_code,
            "type": response.headers.get("content-type", "application/json"),
            "body": base64.b64encode(bytes(response.body)).decode(),
        }
        ttl = server.idempotency_ttl_s
    await services.state.set(record, json.dumps(done), ttl)


async def _replay(services: Services, record: str, fingerprint: str) -> Response:
    raw = await services.state.get(record)
    if raw is None:  # expired in between: the caller may simply retry
        raise ApiError(409, "the idempotency record just expired; retry", "idempotency_retry")
    stored = json.loads(raw)
    if stored["fp"] != fingerprint:
        raise ApiError(
            409,
            f"this {HEADER} was used with a different request",
            "idempotency_key_reused",
        )
    if stored["state"] != "done":
        raise ApiError(
            409,
            f"a request with this {HEADER} is still running",
            "idempotency_in_progress",
            headers={"Retry-After": "1"},
        )
    services.metrics.replays.labels("idempotency").inc()
    headers = {"Idempotent-Replayed": "true"}
    if "run" in stored:
        return StreamingResponse(
            services.runs.follow(stored["run"]),
            media_type="text/event-stream",
            headers={**headers, "X-Run-Id": stored["run"], "Cache-Control": "no-cache"},
        )
    return Response(
        base64.b64decode(stored["body"]),
        status_code=int(stored["status"]),
        media_type=stored["type"],
        headers=headers,
    )

"""JSON over HTTP to model servers (embeddings, rerank), with one timeout and retry policy.

httpx rather than the ``openai`` client: the rerank endpoint is not part of the OpenAI API, so
one small client serves both calls; the ``openai`` client would layer its own retries under
ours and decode embeddings as base64, which not every compatible server (TEI) produces.

Retries: timeouts, connection errors, HTTP 429 and 5xx, with jittered exponential backoff
(``Retry-After`` is honoured when the server sends it). Other 4xx answers and malformed
bodies fail at once. Error messages name the URL and the status, never the texts sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

__all__ = ["JsonClient", "RemoteServiceError"]

_MAX_RETRY_AFTER_S = 30.0


class RemoteServiceError(RuntimeError):
    """A model server could not be reached, refused the request or answered nonsense.

    Attributes:
        status: The HTTP status of the last answer, if there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Create the error; ``message`` must not contain any text that was sent."""
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A failure worth retrying: 429 or 5xx."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: the backoff decides


_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, _Transient)


class JsonClient:
    """POSTs JSON to ``{base_url}/{path}`` and returns the decoded answer. Thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        """Configure the client; nothing connects until the first call.

        Args:
            base_url: The server's API root, e.g. ``http://embeddings:8080/v1``.
            service: What the server does, for error messages (``embeddings``, ``rerank``).
            api_key: Sent as a bearer token when set.
            timeout_s: Limit for connecting, and for each read and write, per attempt.
            max_retries: Retries after the first attempt, for transient failures only.
            backoff_s: First backoff; it doubles per retry, plus up to as much jitter.
            max_backoff_s: Ceiling of one backoff.
        """
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.attempts = max_retries + 1
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s))
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_s, max=max_backoff_s, jitter=backoff_s
        )

    def _wait(self, state: RetryCallState) -> float:
        wait = self._backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, _MAX_RETRY_AFTER_S))
        return wait

    def _post_once(self, url: str, payload: dict[str, Any]) -> Any:
        response = self._http.post(url, json=payload)
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(status, _retry_after(response))
        if status >= 400:
            raise RemoteServiceError(
                f"{self.service} request to {url} was refused: HTTP {status} "
                f"{response.reason_phrase}",
                status=status,
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RemoteServiceError(
                f"malformed {self.service} response from {url}: not JSON", status=status
            ) from None

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` and return the decoded JSON body.

        Raises:
            RemoteServiceError: The server refused the request (4xx other than 429), sent
                something that is not JSON, or still failed after every retry.
        """
        url = f"{self.base_url}/{path.lstrip('/')}"
        retrying = Retrying(
            retry=retry_if_exception_type(_RETRYABLE),
            wait=self._wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        )
        try:
            return retrying(self._post_once, url, payload)
        except _Transient as exc:
            raise RemoteServiceError(
                f"{self.service} request to {url} failed after {self.attempts} attempt(s): "
                f"HTTP {exc.status}",
                status=exc.status,
            ) from None
        except httpx.TimeoutException:
            raise RemoteServiceError(
                f"{self.service} request to {url} timed out after {self.attempts} attempt(s)"
            ) from None
        except httpx.TransportError as exc:
            raise RemoteServiceError(
                f"{self.service} request to {url} failed after {self.attempts} attempt(s): "
                f"{type(exc).__name__}"
            ) from None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

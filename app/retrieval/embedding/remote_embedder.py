"""Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (vLLM, TEI, OpenAI)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ValidationError

from app.retrieval.embedding.query_cache import QueryCache
from app.retrieval.model_http import JsonClient, RemoteServiceError
from app.retrieval.protocols import Vector

__all__ = ["RemoteEmbedder"]


class _Item(BaseModel):
    index: int
    embedding: list[float]


class _Answer(BaseModel):
    data: list[_Item]


class RemoteEmbedder:
    """Batches texts to a remote model and returns unit vectors, caching query vectors."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        max_tokens: int,
        dim: int | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        cache: QueryCache | None = None,
    ) -> None:
        """Configure the embedder; nothing connects until the first call.

        Args:
            base_url: The API root; ``{base_url}/embeddings`` is called.
            model: The served model's name, sent with each request and recorded with
                every indexed document.
            max_tokens: How many tokens the model reads; chunk sizes derive from it.
            dim: The vector dimension; None asks the server once, on first use.
            api_key: Sent as a bearer token.
            batch_size: Texts per request.
            timeout_s: Per-attempt limit (see :class:`JsonClient`).
            max_retries: Retries of a transient failure.
            backoff_s: First backoff between retries.
            cache: Query vectors, keyed by model and text; a private one when None.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be > 0")
        self._model = model
        self._max_tokens = max_tokens
        self._dim = dim
        self._batch_size = batch_size
        self._cache = cache if cache is not None else QueryCache()
        self._probe_lock = threading.Lock()
        self._client = JsonClient(
            base_url,
            service="embeddings",
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
        )

    @property
    def model_name(self) -> str:
        """The model identifier."""
        return self._model

    @property
    def dim(self) -> int:
        """The vector dimension: configured, or asked of the server once."""
        if self._dim is None:
            with self._probe_lock:
                if self._dim is None:
                    self._dim = int(self._request(["dimension probe"], None).shape[1])
        return self._dim

    @property
    def max_tokens(self) -> int:
        """How many tokens of a passage the model reads (configured)."""
        return self._max_tokens

    @property
    def cache(self) -> QueryCache:
        """The query-vector cache."""
        return self._cache

    def _request(self, texts: Sequence[str], dim: int | None) -> Vector:
        answer = self._client.post(
            "embeddings", {"model": self._model, "input": list(texts), "encoding_format": "float"}
        )
        where = f"embeddings response from {self._client.base_url}"
        try:
            items = _Answer.model_validate(answer).data
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            raise RemoteServiceError(f"malformed {where}: {field}: {first['msg']}") from None
        if sorted(item.index for item in items) != list(range(len(texts))):
            raise RemoteServiceError(
                f"malformed {where}: {len(items)} embeddings for {len(texts)} inputs "
                "or indexes out of order"
            )
        items.sort(key=lambda item: item.index)  # servers may answer out of order
        sizes = {len(item.embedding) for item in items}
        if len(sizes) != 1:
            raise RemoteServiceError(f"malformed {where}: embeddings of mixed dimensions")
        size = sizes.pop()
        if dim is not None and size != dim:
            raise RemoteServiceError(
                f"{where} has {size} dimensions, but the embedder is configured for {dim} "
                f"(embed.dim, model {self._model!r})"
            )
        matrix = np.asarray([item.embedding for item in items], np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise RemoteServiceError(f"malformed {where}: a zero or non-finite vector")
        # The protocol promises unit vectors; not every server normalises.
        normalized: Vector = matrix / norms
        return normalized

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        """Embed passages, ``batch_size`` per request, into an ``(n, dim)`` unit matrix.

        Raises:
            RemoteServiceError: The server failed after retries, refused the request, or
                answered with malformed data or the wrong dimension.
        """
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        batches = []
        for start in range(0, len(texts), self._batch_size):
            batch = self._request(texts[start : start + self._batch_size], self._dim)
            if self._dim is None:  # learnt from the first answer instead of a probe
                self._dim = int(batch.shape[1])
            batches.append(batch)
        return np.concatenate(batches)

    def embed_query(self, text: str) -> Vector:
        """Embed a query into a unit vector, cached by model and text."""
        return self._cache.get_or_embed(self._model, text, lambda t: self.embed_documents([t])[0])

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

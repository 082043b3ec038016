"""Rerankers: rescore fused hits with a cross-encoder, locally or behind an HTTP ``/rerank``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, TypeAdapter, ValidationError

from app.retrieval.model_http import JsonClient, RemoteServiceError
from app.retrieval.types import Hit
from app.settings import RerankSettings, SettingsError

__all__ = ["CrossEncoderReranker", "HttpReranker", "RerankProtocol", "Reranker", "make_reranker"]


@runtime_checkable
class Reranker(Protocol):
    """Rescores hits against the query."""

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """Return the best ``top_n`` of ``hits`` with the reranker's scores, best first."""
        ...


def _ranked(hits: Sequence[Hit], scores: Sequence[float], top_n: int) -> list[Hit]:
    # Stable: equal scores keep the fused order.
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [Hit(hits[i].chunk, float(scores[i])) for i in order[:top_n]]


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` from a local directory, loaded on first use.

    Needs ragent's optional ``torch`` extra (sentence-transformers and torch).
    """

    def __init__(self, model_path: str | Path, *, batch_size: int = 32) -> None:
        """Configure the reranker; the model loads on the first call.

        Args:
            model_path: A saved CrossEncoder (no model hub is contacted).
            batch_size: Query-passage pairs per forward pass.
        """
        self.model_path = Path(model_path)
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import CrossEncoder

                # By name: transformers comes with the extra, so mypy may not see it.
                importlib.import_module("transformers.utils.logging").disable_progress_bar()
                self._model = CrossEncoder(
                    str(self.model_path), device="cpu", local_files_only=True
                )
            return self._model

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """Score each ``(query, passage)`` pair with the cross-encoder; keep the best ``top_n``."""
        if not hits:
            return []
        scores = self._load().predict(
            [(query, hit.chunk.text) for hit in hits],
            batch_size=self._batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return _ranked(hits, [float(s) for s in scores], top_n)


class _Result(BaseModel):
    index: int
    relevance_score: float


class _Answer(BaseModel):
    results: list[_Result]


class _TeiResult(BaseModel):
    index: int
    score: float


_TEI_ANSWER: TypeAdapter[list[_TeiResult]] = TypeAdapter(list[_TeiResult])

RerankProtocol = Literal["jina", "tei"]
"""``jina``: vLLM, llama.cpp, Jina and Cohere; ``tei``: Text Embeddings Inference."""


class HttpReranker:
    """A ``/rerank`` endpoint, in one of two request shapes.

    ``jina`` (vLLM, llama.cpp's server, Jina, Cohere) sends ``{model, query, documents,
    top_n}`` and reads ``{results: [{index, relevance_score}]}``. ``tei`` (Hugging Face
    Text Embeddings Inference) sends ``{query, texts, truncate}`` in batches of at most
    ``batch_size`` texts (TEI refuses larger ones) and reads ``[{index, score}]``.
    Timeouts and retries are those of :class:`JsonClient`.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        protocol: RerankProtocol = "jina",
        batch_size: int = 32,
    ) -> None:
        """Configure the reranker; nothing connects until the first call.

        Args:
            base_url: The API root; ``{base_url}/rerank`` is called.
            model: The served reranker's name (``jina`` only: TEI serves one model).
            api_key: Sent as a bearer token.
            timeout_s: Per-attempt limit.
            max_retries: Retries of a transient failure.
            backoff_s: First backoff between retries.
            protocol: The request and response shape.
            batch_size: ``tei``: the most texts in one request.
        """
        self.model = model
        self.protocol: RerankProtocol = protocol
        self._batch_size = batch_size
        self._client = JsonClient(
            base_url,
            service="rerank",
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
        )

    def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """Ask the server to score the hits; keep the best ``top_n``.

        Raises:
            RemoteServiceError: The server failed after retries, refused the request, or
                answered with malformed results.
        """
        if not hits:
            return []
        if self.protocol == "tei":
            return _ranked(hits, self._tei_scores(query, [h.chunk.text for h in hits]), top_n)
        answer = self._client.post(
            "rerank",
            {
                "model": self.model,
                "query": query,
                "documents": [hit.chunk.text for hit in hits],
                "top_n": min(top_n, len(hits)),
            },
        )
        where = f"rerank response from {self._client.base_url}"
        try:
            results = _Answer.model_validate(answer).results
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            raise RemoteServiceError(f"malformed {where}: {field}: {first['msg']}") from None
        indexes = [r.index for r in results]
        if len(set(indexes)) != len(indexes) or not all(0 <= i < len(hits) for i in indexes):
            raise RemoteServiceError(f"malformed {where}: result indexes out of range or repeated")
        chosen = [hits[r.index] for r in results]
        return _ranked(chosen, [r.relevance_score for r in results], top_n)

    def _tei_scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Score every text, ``batch_size`` texts per request, in the texts' order."""
        where = f"rerank response from {self._client.base_url}"
        scores: list[float] = []
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            answer = self._client.post(
                "rerank", {"query": query, "texts": list(batch), "truncate": True}
            )
            try:
                results = _TEI_ANSWER.validate_python(answer)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "body"
                raise RemoteServiceError(f"malformed {where}: {field}: {first['msg']}") from None
            if sorted(r.index for r in results) != list(range(len(batch))):
                raise RemoteServiceError(
                    f"malformed {where}: result indexes out of range, repeated or missing"
                )
            by_index = {r.index: r.score for r in results}
            scores.extend(by_index[i] for i in range(len(batch)))
        return scores

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def make_reranker(cfg: RerankSettings) -> Reranker | None:
    """Build the configured reranker, or None when reranking is off.

    Raises:
        SettingsError: The cross-encoder directory does not exist, or sentence-transformers
            (ragent's ``torch`` extra) is not installed.
    """
    if cfg.provider == "none":
        return None
    assert cfg.model  # enforced by RerankSettings
    if cfg.provider == "cross-encoder":
        if not Path(cfg.model).is_dir():
            raise SettingsError(
                f"invalid setting 'rerank.model': {cfg.model} is not a directory "
                "(a saved CrossEncoder is expected)"
            )
        if importlib.util.find_spec("sentence_transformers") is None:
            raise SettingsError(
                "invalid setting 'rerank.provider': 'cross-encoder' needs sentence-transformers; "
                "install ragent's torch extra (pip install -e '.[torch]') or use 'http'"
            )
        return CrossEncoderReranker(cfg.model, batch_size=cfg.batch_size)
    assert cfg.base_url  # enforced by RerankSettings
    return HttpReranker(
        cfg.base_url,
        cfg.model,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        protocol=cfg.protocol,
        batch_size=cfg.batch_size,
    )

"""An OpenAI-protocol embeddings and rerank server for tests, with scripted failures.

Vectors are deterministic: words hashed into ``dim`` buckets, deliberately not unit length,
and ``data`` comes back in reverse order (each item keeps its ``index``), as a server may
answer. Rerank scores are the share of query words found in each document, at
``/v1/rerank`` (the Jina/Cohere/vLLM shape) and at ``/rerank`` (Text Embeddings
Inference's shape).

``state.fail(*modes)`` makes the next requests fail, one mode each:

- ``"500"``, ``"503"``, ``"429"``, ``"400"``, ``"404"``: that status (``"429:1"`` adds
  ``Retry-After: 1``);
- ``"slow"``: answer after ``state.slow_s`` seconds, past the client's timeout;
- ``"malformed"``: a body that is not JSON; ``"shape"``: JSON of the wrong shape;
- ``"wrong-dim"``: vectors one dimension short; ``"short"``: one embedding missing;
- ``"bad-index"``: a rerank result pointing past the documents.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def hashed_vector(text: str, dim: int) -> list[float]:
    """The server's raw (unnormalised) vector of ``text``."""
    out = [0.0] * dim
    for word in words(text) or ["<empty>"]:
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest())
        out[bucket % dim] += 3.0
    return out


def overlap_score(query: str, document: str) -> float:
    """The server's rerank score: the share of query words present in the document."""
    q, d = set(words(query)), set(words(document))
    return len(q & d) / len(q) if q else 0.0


@dataclass
class ServerState:
    dim: int = 32
    slow_s: float = 1.0
    tei_max_batch: int = 32
    """TEI's ``--max-client-batch-size``: more texts in one /rerank are refused with 413."""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    failures: deque[str] = field(default_factory=deque)

    def fail(self, *modes: str) -> None:
        self.failures.extend(modes)

    def reset(self, *, dim: int = 32) -> None:
        self.dim = dim
        self.tei_max_batch = 32
        self.requests.clear()
        self.headers.clear()
        self.failures.clear()

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


async def _failure(state: ServerState) -> tuple[str | None, Response | None]:
    """Pop the next scripted mode; return it, or the response that fails the request."""
    if not state.failures:
        return None, None
    mode = state.failures.popleft()
    status, _, after = mode.partition(":")
    if status.isdigit():
        headers = {"Retry-After": after} if after else {}
        return mode, JSONResponse({"error": {"message": mode}}, int(status), headers)
    if mode == "slow":
        await asyncio.sleep(state.slow_s)
        return mode, JSONResponse({"error": {"message": "too late"}}, 200)
    if mode == "malformed":
        return mode, PlainTextResponse('{"data": [', media_type="application/json")
    if mode == "shape":
        return mode, JSONResponse({"data": "nope", "results": [{"index": "x"}]})
    return mode, None  # alters a good answer instead


def make_app(state: ServerState) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def record(request: Request, path: str) -> dict[str, Any]:
        payload: dict[str, Any] = await request.json()
        state.requests.append((path, payload))
        state.headers.append(dict(request.headers))
        return payload

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        payload = await record(request, "embeddings")
        mode, failed = await _failure(state)
        if failed is not None:
            return failed
        texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
        dim = state.dim - 1 if mode == "wrong-dim" else state.dim
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_vector(t, dim)}
            for i, t in enumerate(texts)
        ]
        if mode == "short":
            data.pop()
        return JSONResponse(
            {"object": "list", "model": payload["model"], "data": data[::-1], "usage": {}}
        )

    @app.post("/v1/rerank")
    async def rerank(request: Request) -> Response:
        payload = await record(request, "rerank")
        mode, failed = await _failure(state)
        if failed is not None:
            return failed
        docs: list[str] = payload["documents"]
        scores = [overlap_score(payload["query"], d) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[: payload.get("top_n")]
        results = [{"index": i, "relevance_score": scores[i]} for i in order]
        if mode == "bad-index":
            results[0]["index"] = len(docs)
        return JSONResponse({"model": payload["model"], "results": results, "usage": {}})

    @app.post("/rerank")
    async def tei_rerank(request: Request) -> Response:
        # Text Embeddings Inference's contract: {query, texts} in, [{index, score}] out.
        payload = await record(request, "tei-rerank")
        mode, failed = await _failure(state)
        if failed is not None:
            return failed
        texts: list[str] = payload["texts"]
        if len(texts) > state.tei_max_batch:
            message = f"batch size {len(texts)} > maximum allowed batch size {state.tei_max_batch}"
            return JSONResponse({"error": message, "error_type": "Validation"}, 413)
        scores = [overlap_score(payload["query"], t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        results = [{"index": i, "score": scores[i]} for i in order]
        if mode == "bad-index":
            results[0]["index"] = len(texts)
        return JSONResponse(results)

    return app

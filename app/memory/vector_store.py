"""Vector recall on top of any LangGraph store, for stores that cannot search by meaning.

langgraph's ``SqliteStore`` does vector search through the sqlite-vec extension, which
needs a Python whose ``sqlite3`` can load extensions; many builds cannot. This wrapper
keeps each item's embedding inside its value and ranks a namespace's items by cosine
similarity in numpy. It suits small namespaces such as one user's memories; the caller
bounds their size (``memory.max_per_user``).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from app.retrieval.protocols import Embedder

__all__ = ["VECTOR_KEY", "VectorRecallStore"]

VECTOR_KEY: Final = "__vector__"
"""Where an item's embedding (base64 float32) is kept in its stored value."""


def _strip(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != VECTOR_KEY}


def _decode(value: dict[str, Any]) -> np.ndarray | None:
    raw = value.get(VECTOR_KEY)
    if not isinstance(raw, str):
        return None
    return np.frombuffer(base64.b64decode(raw), dtype=np.float32)


def _text(value: dict[str, Any], fields: Sequence[str]) -> str:
    return "\n".join(str(value[f]) for f in fields if value.get(f) not in (None, ""))


class VectorRecallStore(BaseStore):
    """A store that adds ``search(query=...)`` by embedding similarity to another store.

    Args:
        inner: The store that keeps the items (SQLite, in memory, ...).
        embedder: Embeds item texts and queries (unit vectors).
        fields: Value fields whose text is embedded.
        scan_limit: Most items of a namespace read to rank one query.
    """

    def __init__(
        self,
        inner: BaseStore,
        embedder: Embedder,
        *,
        fields: Sequence[str] = ("text",),
        scan_limit: int = 1000,
    ) -> None:
        """Wrap ``inner``; nothing is embedded until an item is put or searched."""
        self.inner = inner
        self.embedder = embedder
        self.fields = tuple(fields)
        self.scan_limit = scan_limit
        self.supports_ttl = inner.supports_ttl
        self.ttl_config = getattr(inner, "ttl_config", None)

    def _embed_puts(self, ops: list[Op]) -> list[Op]:
        """Replace each indexed put by one whose value carries its embedding."""
        todo = [
            (i, op, _text(dict(op.value), op.index or self.fields))
            for i, op in enumerate(ops)
            if isinstance(op, PutOp) and op.value is not None and op.index is not False
        ]
        todo = [(i, op, text) for i, op, text in todo if text]
        if not todo:
            return ops
        vectors = np.asarray(self.embedder.embed_documents([t for _, _, t in todo]), np.float32)
        out = list(ops)
        for (i, op, _), vector in zip(todo, vectors, strict=True):
            assert op.value is not None
            encoded = base64.b64encode(vector.astype(np.float32).tobytes()).decode()
            value = {**_strip(dict(op.value)), VECTOR_KEY: encoded}
            out[i] = PutOp(op.namespace, op.key, value, index=False, ttl=op.ttl)
        return out

    def _plan(self, ops: Iterable[Op]) -> list[Op]:
        """Embed puts and turn semantic searches into plain scans of the namespace."""
        planned = self._embed_puts(list(ops))
        return [
            SearchOp(op.namespace_prefix, op.filter, self.scan_limit, 0, None, op.refresh_ttl)
            if isinstance(op, SearchOp) and op.query
            else op
            for op in planned
        ]

    def _rank(self, op: SearchOp, items: list[SearchItem]) -> list[SearchItem]:
        assert op.query
        query = np.asarray(self.embedder.embed_query(op.query), np.float32)
        query = query / (np.linalg.norm(query) or 1.0)  # a copy: cached vectors are read-only
        scored: list[SearchItem] = []
        for item in items:
            vector = _decode(item.value)
            score = None
            if vector is not None and vector.shape == query.shape:
                score = float(vector @ query / (np.linalg.norm(vector) or 1.0))
            scored.append(
                SearchItem(
                    item.namespace,
                    item.key,
                    _strip(item.value),
                    item.created_at,
                    item.updated_at,
                    score,
                )
            )
        scored.sort(key=lambda s: -2.0 if s.score is None else s.score, reverse=True)
        return scored[op.offset : op.offset + op.limit]

    def _finish(self, ops: list[Op], results: list[Result]) -> list[Result]:
        out: list[Result] = []
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, SearchOp) and isinstance(result, list):
                found = [item for item in result if isinstance(item, SearchItem)]
                if op.query:
                    out.append(self._rank(op, found) if found else [])
                else:
                    out.append([_copy(item) for item in found])
            elif isinstance(op, GetOp) and isinstance(result, Item):
                out.append(_copy(result))
            else:
                out.append(result)
        return out

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations synchronously (embedding in this thread)."""
        original = list(ops)
        return self._finish(original, self.inner.batch(self._plan(original)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations; embedding and ranking run in a worker thread.

        Only when there is something to embed or rank: the recall of a user with no
        memories makes no thread hop besides the inner store's.
        """
        original = list(ops)
        if any(isinstance(op, PutOp) and op.value is not None for op in original):
            planned = await asyncio.to_thread(self._plan, original)
        else:
            planned = self._plan(original)
        results = await self.inner.abatch(planned)
        ranks = any(
            isinstance(op, SearchOp) and op.query and result
            for op, result in zip(original, results, strict=True)
        )
        if ranks:
            return await asyncio.to_thread(self._finish, original, results)
        return self._finish(original, results)


def _copy(item: Item) -> Any:
    """The same item without its stored embedding."""
    if isinstance(item, SearchItem):
        return SearchItem(
            item.namespace,
            item.key,
            _strip(item.value),
            item.created_at,
            item.updated_at,
            item.score,
        )
    return Item(
        namespace=item.namespace,
        key=item.key,
        value=_strip(item.value),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )

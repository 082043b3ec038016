"""A user's long-term memories in a LangGraph store: remember, recall, list, forget.

Every operation is scoped to one tenant and user (:mod:`app.memory.namespaces`). Results
are also checked against the exact namespace, so a store that matches namespaces loosely
can never hand one user another's memories. Keys derive from the namespace and the text:
the same fact remembered twice is one memory, and no key is shared across users.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langgraph.store.base import NOT_PROVIDED, BaseStore, NotProvided, SearchItem

from app.memory.namespaces import Kind, namespace
from app.settings import MemorySettings

__all__ = ["Memory", "MemoryBank", "Origin", "normalise"]

Origin = Literal["explicit", "llm", "tool"]
"""Where a memory came from: the user's own words, a model's extraction, or a tool."""

MAX_TEXT_CHARS = 500
"""Longest memory kept; longer text is cut at a word boundary."""


def normalise(text: str) -> str:
    """Collapse whitespace and cap the length of a memory's text."""
    text = " ".join(text.split())
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] + "…"
    return text


@dataclass(frozen=True)
class Memory:
    """One remembered item, as listed to its owner."""

    id: str
    text: str
    origin: str
    created_at: datetime
    updated_at: datetime
    score: float | None = None
    """Similarity to the recall query; None when listed."""
    extra: dict[str, Any] | None = None
    """Other stored fields (a note's title, for example)."""

    def as_dict(self) -> dict[str, Any]:
        """Return the memory as a JSON-ready dict."""
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "updated_at": self.updated_at.isoformat(timespec="seconds"),
        }
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return {**out, **(self.extra or {})}


class MemoryBank:
    """Memories (or notes) of users in one store.

    Args:
        store: Any LangGraph store; recall needs one that searches by meaning.
        settings: Recall size, relevance floor, retention and the per-user cap.
        kind: ``memories`` or ``notes``.
    """

    def __init__(self, store: BaseStore, settings: MemorySettings, kind: Kind = "memories") -> None:
        """Bind the bank to a store and its settings."""
        self.store = store
        self.settings = settings
        self.kind: Kind = kind

    def _scope(self, tenant_id: str, user_id: str) -> tuple[str, str, str]:
        return namespace(self.kind, tenant_id, user_id)

    def _expired(self, item: SearchItem) -> bool:
        days = self.settings.ttl_days
        if days is None:
            return False
        updated = item.updated_at
        if updated.tzinfo is None:
            updated = updated.replace(tzinfo=UTC)
        return updated < datetime.now(UTC) - timedelta(days=days)

    def _own(self, items: list[SearchItem], scope: tuple[str, ...]) -> list[SearchItem]:
        return [i for i in items if tuple(i.namespace) == scope and not self._expired(i)]

    @staticmethod
    def _memory(item: SearchItem) -> Memory:
        value = dict(item.value)
        text = str(value.pop("text", ""))
        origin = str(value.pop("origin", "explicit"))
        return Memory(
            id=item.key,
            text=text,
            origin=origin,
            created_at=item.created_at,
            updated_at=item.updated_at,
            score=item.score,
            extra=value or None,
        )

    async def _all(self, tenant_id: str, user_id: str) -> list[SearchItem]:
        scope = self._scope(tenant_id, user_id)
        # One more than the cap, so that an overfull namespace is noticed.
        items = await self.store.asearch(scope, limit=self.settings.max_per_user + 1)
        return self._own(items, scope)

    async def remember(
        self,
        tenant_id: str,
        user_id: str,
        text: str,
        *,
        origin: Origin = "explicit",
        extra: dict[str, Any] | None = None,
        unique: bool = False,
    ) -> Memory:
        """Store a memory; the same text for the same user replaces the earlier one.

        Args:
            tenant_id: The owner's tenant.
            user_id: The owner.
            text: What to remember.
            origin: Where it came from.
            extra: More fields to store with it (they are not embedded).
            unique: Give the item its own key even if the same text exists (notes).

        Returns:
            The stored memory.

        Raises:
            ValueError: ``text`` is empty.
        """
        clean = normalise(text)
        if not clean:
            raise ValueError("nothing to remember: the text is empty")
        scope = self._scope(tenant_id, user_id)
        salt = datetime.now(UTC).isoformat() if unique else ""
        key = hashlib.blake2b(
            "\x1f".join([*scope, clean.casefold(), salt]).encode(), digest_size=16
        ).hexdigest()
        value = {**(extra or {}), "text": clean, "origin": origin}
        ttl: float | NotProvided = NOT_PROVIDED
        if self.store.supports_ttl and self.settings.ttl_days is not None:
            ttl = self.settings.ttl_days * 24 * 60
        # Notes are listed, never recalled by meaning: they are not embedded.
        index: Literal[False] | None = False if self.kind == "notes" else None
        await self.store.aput(scope, key, value, index=index, ttl=ttl)
        await self._enforce_cap(tenant_id, user_id)
        now = datetime.now(UTC)
        return Memory(key, clean, origin, now, now, extra=extra)

    async def _enforce_cap(self, tenant_id: str, user_id: str) -> None:
        items = await self._all(tenant_id, user_id)
        extra = len(items) - self.settings.max_per_user
        if extra > 0:
            oldest = sorted(items, key=lambda i: i.updated_at)[:extra]
            for item in oldest:
                await self.store.adelete(item.namespace, item.key)

    async def recall(
        self, tenant_id: str, user_id: str, query: str, *, k: int | None = None
    ) -> list[Memory]:
        """Return the user's memories most relevant to ``query``, best first.

        Memories below ``min_score`` or past their retention are left out.
        """
        k = self.settings.recall_k if k is None else k
        if k <= 0 or not query.strip():
            return []
        scope = self._scope(tenant_id, user_id)
        items = self._own(await self.store.asearch(scope, query=query, limit=k), scope)
        floor = self.settings.min_score
        return [self._memory(i) for i in items if i.score is None or i.score >= floor]

    async def list(self, tenant_id: str, user_id: str) -> list[Memory]:
        """Return all of the user's memories, newest first."""
        items = sorted(await self._all(tenant_id, user_id), key=lambda i: i.updated_at)
        return [self._memory(i) for i in reversed(items)]

    async def delete(self, tenant_id: str, user_id: str, memory_id: str) -> bool:
        """Delete one of the user's memories; returns False when the user has no such id."""
        for item in await self._all(tenant_id, user_id):
            if item.key == memory_id:
                await self.store.adelete(item.namespace, item.key)
                return True
        return False

    async def clear(self, tenant_id: str, user_id: str) -> int:
        """Delete all of the user's memories; returns how many there were."""
        items = await self._all(tenant_id, user_id)
        for item in items:
            await self.store.adelete(item.namespace, item.key)
        return len(items)

"""What an API key stands for, and the protocol of the stores that keep key records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["SCOPES", "ApiKey", "KeyStore", "Scope"]

Scope = Literal["chat", "ingest"]
SCOPES: tuple[Scope, ...] = ("chat", "ingest")
"""``chat``: chat, threads, runs, memories; ``ingest``: ingestion and its jobs."""


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """What a key stands for; the secret itself is never stored."""

    key_id: str
    tenant_id: str
    user_id: str
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = SCOPES
    name: str = ""
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (no hash, no secret)."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant_id,
            "user": self.user_id,
            "groups": list(self.groups),
            "scopes": list(self.scopes),
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore(Protocol):
    """Where key records live: SQLite on one machine, Redis for replicas."""

    def add(self, record: ApiKey, key_hash: str) -> None:
        """Store a new key's record and hash."""
        ...

    def find(self, key_id: str) -> tuple[ApiKey, str] | None:
        """Return a key's record and stored hash, or None."""
        ...

    async def afind(self, key_id: str) -> tuple[ApiKey, str] | None:
        """:meth:`find` for the event loop (the server checks a key on every request)."""
        ...

    def list(self) -> list[ApiKey]:
        """Return every key, oldest first."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when there is no such key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    async def aclose(self) -> None:
        """Release connections, those :meth:`afind` opened included."""
        ...

"""What the answer cache stores, and the scope an entry may be served in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from app.state import Citation

__all__ = ["CachedAnswer", "CitedDocument", "Scope", "scope_key"]


@dataclass(frozen=True, slots=True)
class CitedDocument:
    """A document an answer cites, as indexed when the answer was made."""

    doc_id: str
    content_hash: str
    index_version: str
    chunk_ids: tuple[str, ...]
    """The chunks of it the answer cites."""


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Everything a stored answer depends on besides the question.

    An entry is served only to a lookup with the same scope: the same tenant (and
    namespace), the same ACL groups, the same model, prompt, decoding settings, tools
    offered and retrieval knobs, and the same embedding model (whose vectors compare).
    """

    tenant: str
    """The tenant searched (with its namespace, as :func:`namespace_tenant` writes it)."""
    groups: Sequence[str]
    model: str
    embed_model: str
    system_prompt: str
    decoding: dict[str, Any] = field(default_factory=dict)
    tools: Sequence[str] = ()
    retrieval: dict[str, Any] = field(default_factory=dict)


def scope_key(scope: Scope) -> str:
    """Return the scope's 32-hex-digit key (the groups and tools in sorted order)."""
    canonical = json.dumps(
        {
            **asdict(scope),
            "groups": sorted(set(scope.groups)),
            "tools": sorted(set(scope.tools)),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class CachedAnswer:
    """A final answer, as the output guard let it out, with what it cites."""

    question: str
    answer: str
    citations: list[Citation]
    documents: list[CitedDocument]
    tokens: int = 0
    """Model tokens the turn that made it used (saved by every hit)."""
    created: float = 0.0
    """Unix time it was stored."""

    def to_json(self) -> str:
        """Serialise everything but the question's vector."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CachedAnswer:
        """Read an entry written by :meth:`to_json`."""
        data = json.loads(text)
        docs = [
            CitedDocument(
                doc_id=d["doc_id"],
                content_hash=d["content_hash"],
                index_version=d["index_version"],
                chunk_ids=tuple(d["chunk_ids"]),
            )
            for d in data["documents"]
        ]
        return cls(
            question=data["question"],
            answer=data["answer"],
            citations=[
                Citation(
                    label=c["label"],
                    source=c["source"],
                    doc_id=c["doc_id"],
                    chunk_id=c["chunk_id"],
                    span=list(c["span"]),
                )
                for c in data["citations"]
            ],
            documents=docs,
            tokens=int(data.get("tokens", 0)),
            created=float(data.get("created", 0.0)),
        )

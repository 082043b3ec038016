"""The semantic answer cache: scoped lookup, near-miss rejection, validity against the index.

A lookup embeds the question, asks the engine for the nearest entries of the same
:class:`~app.cache.entry.Scope`, and serves the first that passes three checks: cosine
similarity at least ``threshold``, agreement of the two questions
(:func:`~app.cache.agreement.agree`), and every cited chunk still indexed as it was
(same document content hash, pipeline version, chunk ids). An entry that fails the last
check is deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from prometheus_client import Counter, Histogram

from app.cache.agreement import WordSimilarity, agree
from app.cache.entry import CachedAnswer, CitedDocument, Scope, scope_key
from app.cache.store import AnswerStore, Candidate
from app.observability.metrics import REGISTRY
from app.retrieval.protocols import DocumentWriter, Embedder
from app.state import Citation

__all__ = ["LOOKUPS", "Lookup", "SemanticCache", "word_similarity"]

Outcome = Literal["hit", "miss", "near_miss", "stale", "error"]

LOOKUPS: Final = Counter(
    "ragent_answer_cache_lookups_total",
    "Answer-cache lookups by outcome (hit, miss, near_miss, stale, error).",
    ["outcome"],
    registry=REGISTRY,
)
LOOKUP_SECONDS: Final = Histogram(
    "ragent_answer_cache_lookup_seconds",
    "Time of an answer-cache lookup, by whether it hit.",
    ["hit"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
SAVED_TOKENS: Final = Counter(
    "ragent_answer_cache_saved_tokens_total",
    "Model tokens the turns served from the answer cache would have used.",
    registry=REGISTRY,
)


def word_similarity(embedder: Embedder) -> WordSimilarity:
    """Cosine similarity of two words' embeddings (cached by the embedder's query cache)."""

    def similar(a: str, b: str) -> float:
        va, vb = embedder.embed_query(a), embedder.embed_query(b)
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return float(np.dot(va, vb)) / max(norm, 1e-12)

    return similar


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a lookup found."""

    outcome: Outcome
    entry: CachedAnswer | None = None
    similarity: float = 0.0
    seconds: float = 0.0


class SemanticCache:
    """Answers reused for the same or paraphrased questions within one scope."""

    def __init__(
        self,
        store: AnswerStore,
        embedder: Embedder,
        documents: DocumentWriter,
        *,
        threshold: float,
        term_threshold: float,
        candidates: int = 4,
    ) -> None:
        """Serve entries of ``store``, checked against the records of ``documents``."""
        self.store = store
        self.embedder = embedder
        self.documents = documents
        self.threshold = threshold
        self.term_threshold = term_threshold
        self.candidates = candidates
        self.similar_words = word_similarity(embedder)

    def _valid(self, tenant: str, entry: CachedAnswer) -> bool:
        for cited in entry.documents:
            record = self.documents.document(tenant, cited.doc_id)
            if (
                record is None
                or record.content_hash != cited.content_hash
                or record.index_version != cited.index_version
                or not set(cited.chunk_ids) <= set(record.chunk_ids)
            ):
                return False
        return True

    def choose(self, scope: Scope, question: str, found: Sequence[Candidate]) -> Lookup:
        """Pick the entry to serve among the nearest ones (blocking: index reads)."""
        outcome: Outcome = "miss"
        for entry_id, entry, similarity in found:
            if similarity < self.threshold:
                break
            agreement = agree(
                entry.question, question, self.similar_words, term_threshold=self.term_threshold
            )
            if not agreement.ok:
                outcome = "near_miss"
                continue
            if not self._valid(scope.tenant, entry):
                self.store.delete(entry_id)
                outcome = "stale"
                continue
            return Lookup("hit", entry, similarity)
        return Lookup(outcome)

    def _lookup(self, scope: Scope, question: str) -> Lookup:
        vector = self.embedder.embed_query(question)
        found = self.store.nearest(scope_key(scope), vector, self.candidates)
        return self.choose(scope, question, found)

    async def lookup(self, scope: Scope, question: str) -> Lookup:
        """Find a stored answer to serve for ``question`` in ``scope``.

        An engine that fails costs the lookup (``error``), never the turn.
        """
        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(self._lookup, scope, question)
        except Exception:  # noqa: BLE001 - the cache is an optimisation
            result = Lookup("error")
        seconds = time.perf_counter() - started
        LOOKUPS.labels(result.outcome).inc()
        LOOKUP_SECONDS.labels(str(result.outcome == "hit").lower()).observe(seconds)
        saved = result.entry.tokens if result.entry is not None else 0
        if result.outcome == "hit":
            SAVED_TOKENS.inc(saved)
        counts = {
            "lookups": 1.0,
            result.outcome: 1.0,
            f"{result.outcome}_seconds": seconds,
            "saved_tokens": float(saved),
        }
        try:
            await asyncio.to_thread(self.store.bump, counts)
        except Exception:  # noqa: BLE001, S110 - the counters are best effort
            pass
        return Lookup(result.outcome, result.entry, result.similarity, seconds)

    def _cited(self, tenant: str, citations: Sequence[Citation]) -> list[CitedDocument] | None:
        by_doc: dict[str, set[str]] = {}
        for citation in citations:
            by_doc.setdefault(citation["doc_id"], set()).add(citation["chunk_id"])
        documents = []
        for doc_id, chunk_ids in sorted(by_doc.items()):
            record = self.documents.document(tenant, doc_id)
            if record is None or not chunk_ids <= set(record.chunk_ids):
                return None  # changed while the turn ran
            documents.append(
                CitedDocument(doc_id, record.content_hash, record.index_version, tuple(chunk_ids))
            )
        return documents

    def _put(
        self, scope: Scope, question: str, answer: str, citations: list[Citation], tokens: int
    ) -> bool:
        documents = self._cited(scope.tenant, citations)
        if not documents:
            return False
        entry = CachedAnswer(
            question=question,
            answer=answer,
            citations=citations,
            documents=documents,
            tokens=tokens,
            created=time.time(),
        )
        self.store.put(scope_key(scope), self.embedder.embed_query(question), entry)
        return True

    async def put(
        self, scope: Scope, question: str, answer: str, citations: list[Citation], tokens: int
    ) -> bool:
        """Store a cited answer; return whether it was stored.

        An answer without citations, or citing a chunk no longer indexed, is not stored:
        its validity could not be checked at lookup.
        """
        try:
            return await asyncio.to_thread(self._put, scope, question, answer, citations, tokens)
        except Exception:  # noqa: BLE001 - the cache is an optimisation
            LOOKUPS.labels("error").inc()
            return False

"""The answer-cache engine on Redis: a RediSearch vector index shared by every process.

Each entry is a hash (scope as a TAG, the question's vector, the entry as JSON) with a
TTL; a sorted set orders entries by age so that the oldest past the size bound go.
A lookup is one KNN query filtered by scope inside RediSearch.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, cast

import numpy as np
import redis
from redis.commands.search.field import NumericField, TagField, VectorField
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query

from app.cache.entry import CachedAnswer
from app.cache.store import Candidate
from app.retrieval.protocols import Vector

__all__ = ["RedisAnswerStore"]


class RedisAnswerStore:
    """Entries in Redis under ``prefix``, searched by a RediSearch vector index."""

    def __init__(
        self,
        url: str,
        *,
        dim: int,
        ttl_s: float,
        max_entries: int,
        prefix: str = "ragent:answers:",
    ) -> None:
        """Connect to Redis (lazily) and remember the index's shape."""
        self.dim = dim
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._index = f"{prefix}idx:{dim}"
        self._ready = False

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()

    def _ensure_index(self) -> None:
        if self._ready:
            return
        search = self._redis.ft(self._index)
        try:
            search.info()  # type: ignore[no-untyped-call]
        except redis.ResponseError:
            fields = [
                TagField("scope"),
                NumericField("created"),
                VectorField(
                    "vector",
                    "FLAT",
                    {"TYPE": "FLOAT32", "DIM": self.dim, "DISTANCE_METRIC": "COSINE"},
                ),
            ]
            definition = IndexDefinition(  # type: ignore[no-untyped-call]
                prefix=[f"{self.prefix}e:"], index_type=IndexType.HASH
            )
            try:
                search.create_index(fields, definition=definition)
            except redis.ResponseError as exc:  # another process created it first
                if "already exists" not in str(exc).lower():
                    raise
        self._ready = True

    def nearest(self, scope: str, vector: Vector, k: int) -> list[Candidate]:
        """The ``k`` live entries of ``scope`` nearest to ``vector``, nearest first."""
        self._ensure_index()
        oldest = time.time() - self.ttl_s
        tag = re.sub(r"(\W)", r"\\\1", scope)  # TAG syntax: escape punctuation
        query = (
            Query(f"(@scope:{{{tag}}} @created:[{oldest} +inf])=>[KNN {k} @vector $v AS dist]")
            .sort_by("dist")
            .return_fields("dist", "body")
            .paging(0, k)
            .dialect(2)
        )
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        result: Any = self._redis.ft(self._index).search(query, query_params={"v": blob})
        found: list[Candidate] = []
        for doc in result.docs:
            body = doc.body if isinstance(doc.body, str) else doc.body.decode()
            entry_id = doc.id.removeprefix(f"{self.prefix}e:")
            found.append((entry_id, CachedAnswer.from_json(body), 1.0 - float(doc.dist)))
        return found

    def put(self, scope: str, vector: Vector, entry: CachedAnswer) -> str:
        """Store an entry with its TTL; the oldest past ``max_entries`` go."""
        self._ensure_index()
        entry_id = uuid.uuid4().hex
        key = f"{self.prefix}e:{entry_id}"
        order = f"{self.prefix}order"
        pipe = self._redis.pipeline()
        pipe.hset(
            key,
            mapping={
                "scope": scope,
                "created": entry.created,
                "vector": np.asarray(vector, dtype=np.float32).tobytes(),
                "body": entry.to_json(),
            },
        )
        pipe.expire(key, max(1, int(self.ttl_s)))
        pipe.zadd(order, {entry_id: entry.created})
        pipe.zremrangebyscore(order, "-inf", time.time() - self.ttl_s)
        pipe.execute()
        excess = self._redis.zcard(order) - self.max_entries
        if excess > 0:
            oldest = cast(list[bytes], self._redis.zpopmin(order, excess))
            ids = [member.decode() for member, _ in cast(list[tuple[bytes, float]], oldest)]
            self._redis.delete(*(f"{self.prefix}e:{i}" for i in ids))
        return entry_id

    def delete(self, entry_id: str) -> None:
        """Drop one entry."""
        pipe = self._redis.pipeline()
        pipe.delete(f"{self.prefix}e:{entry_id}")
        pipe.zrem(f"{self.prefix}order", entry_id)
        pipe.execute()

    def count(self) -> int:
        """How many entries are stored (those not yet expired)."""
        order = f"{self.prefix}order"
        self._redis.zremrangebyscore(order, "-inf", time.time() - self.ttl_s)
        return self._redis.zcard(order)

    def clear(self) -> int:
        """Drop every entry and counter."""
        removed = 0
        keys = list(self._redis.scan_iter(match=f"{self.prefix}e:*", count=1000))
        for start in range(0, len(keys), 500):
            removed += self._redis.delete(*keys[start : start + 500])
        self._redis.delete(f"{self.prefix}order", f"{self.prefix}counters")
        return removed

    def bump(self, counts: dict[str, float]) -> None:
        """Add to the shared counters."""
        pipe = self._redis.pipeline()
        for name, value in counts.items():
            pipe.hincrbyfloat(f"{self.prefix}counters", name, value)
        pipe.execute()

    def counters(self) -> dict[str, float]:
        """Return the shared counters."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(f"{self.prefix}counters"))
        return {k.decode(): float(v) for k, v in raw.items()}

"""The ``ingest`` section: chunking, dedup, parallelism and the limits on what a file may cost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from app.config.section import Section

__all__ = ["IngestSettings"]


class IngestSettings(Section):
    """Ingestion: chunking in tokens of the embedder's tokenizer, dedup, parallelism, limits."""

    chunk_tokens: int | None = Field(default=None, ge=16)
    """None: 512, or less when the embedder reads fewer tokens (254 for MiniLM)."""
    chunk_overlap: int | None = Field(default=None, ge=0)
    """None: 64 tokens for 512-token chunks, scaled with the chunk size."""
    max_file_bytes: int = Field(default=50_000_000, gt=0)
    """Larger files are refused before they are read (the bytes as stored, compressed)."""
    max_expanded_bytes: int = Field(default=100_000_000, gt=0)
    """What one file may inflate to before it is parsed: the sum of a DOCX's (zip) parts, of a
    PDF's decompressed streams. Larger files are refused as decompression bombs."""
    max_expansion_ratio: int = Field(default=100, gt=1)
    """How many times its compressed size one part (zip entry, PDF stream) of over 1 MiB may
    inflate to; text compresses about 5-20 times, a bomb by 1000 times."""
    max_nesting: int = Field(default=256, gt=8)
    """The deepest HTML element nesting and Markdown quote/list nesting a file may have."""
    parse_timeout_s: float = Field(default=120.0, gt=0)
    """Wall time one file may take to parse (in its worker process, which is killed past it)."""
    parse_memory_bytes: int = Field(default=3_000_000_000, ge=500_000_000)
    """Address space of a parser process (``RLIMIT_AS``); a file that needs more fails alone.
    Counts mapped libraries too: the parser needs about 1.2 GB before reading any file."""
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)
    workers: int = Field(default=1, ge=0, le=64)
    """Parser processes; 0 counts as 1 (files are always parsed in worker processes)."""
    embed_batch: int = Field(default=256, gt=0)
    state_backend: Literal["sqlite", "redis"] = "sqlite"
    """Where the ingestion state lives: the near-duplicate signatures and, with remote
    engines, the document records that skip unchanged documents. ``sqlite``: this host's
    disk (``dedup.sqlite``, ``index.sqlite``); ``redis``: shared by every worker."""
    state_redis_url: str | None = None
    """None: ``server.redis_url``."""

    @model_validator(mode="after")
    def _redis_scheme(self) -> IngestSettings:
        url = self.state_redis_url
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("state_redis_url must start with redis://, rediss:// or unix://")
        return self

    def state_url(self, server_redis_url: str | None) -> str | None:
        """The Redis of the ingestion state, or None when it stays on this host.

        Raises:
            ValueError: ``state_backend`` is ``redis`` but no Redis is configured.
        """
        if self.state_backend == "sqlite":
            return None
        url = self.state_redis_url or server_redis_url
        if url is None:
            raise ValueError(
                "ingest.state_backend 'redis' needs ingest.state_redis_url or server.redis_url"
            )
        return url

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestSettings:
        if (
            self.chunk_tokens is not None
            and self.chunk_overlap is not None
            and self.chunk_overlap >= self.chunk_tokens
        ):
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

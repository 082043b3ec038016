"""The ``ingest`` section: chunking, dedup and parallelism of ingestion."""

from __future__ import annotations

from pydantic import Field, model_validator

from app.config.section import Section

__all__ = ["IngestSettings"]


class IngestSettings(Section):
    """Ingestion: chunking in tokens of the embedder's tokenizer, dedup, parallelism."""

    chunk_tokens: int | None = Field(default=None, ge=16)
    """None: 512, or less when the embedder reads fewer tokens (254 for MiniLM)."""
    chunk_overlap: int | None = Field(default=None, ge=0)
    """None: 64 tokens for 512-token chunks, scaled with the chunk size."""
    max_file_bytes: int = Field(default=50_000_000, gt=0)
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)
    workers: int = Field(default=1, ge=0, le=64)
    embed_batch: int = Field(default=256, gt=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestSettings:
        if (
            self.chunk_tokens is not None
            and self.chunk_overlap is not None
            and self.chunk_overlap >= self.chunk_tokens
        ):
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

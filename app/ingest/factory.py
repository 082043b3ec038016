"""Build the ingestion pipeline from Settings and the process's engines."""

from __future__ import annotations

from app.ingest.chunking import (
    ChunkingConfigError,
    default_chunk_size,
    default_overlap,
    validate_chunking,
)
from app.ingest.loaders import ExpansionLimits
from app.ingest.pipeline import Ingestor
from app.ingest.redis_signatures import RedisSignatureStore
from app.ingest.sandbox import ParseSandbox, SandboxLimits
from app.ingest.signatures import SignatureSource, SignatureStore
from app.resources import Resources, ingest_state_url
from app.settings import SettingsError

__all__ = ["build_ingestor", "sandbox_limits"]


def sandbox_limits(resources: Resources) -> SandboxLimits:
    """The parser processes' caps from ``ingest.parse_memory_bytes`` and ``parse_timeout_s``."""
    cfg = resources.settings.ingest
    return SandboxLimits(memory_bytes=cfg.parse_memory_bytes, timeout_s=cfg.parse_timeout_s)


def build_ingestor(resources: Resources, *, parsers: ParseSandbox | None = None) -> Ingestor:
    """Return an :class:`Ingestor` whose chunks fit the embedder's window.

    Files are parsed in worker processes capped by the ``ingest`` settings: ``parsers`` if
    given (kept by the caller across runs), else processes started for each run.

    Duplicate signatures are kept in ``<data_dir>/dedup.sqlite``, or in Redis with
    ``ingest.state_backend: redis`` (shared by every worker).

    Raises:
        SettingsError: ``ingest.chunk_tokens`` is larger than the embedder reads, the
            overlap does not fit the chunk size, or the state's Redis is not configured.
    """
    cfg = resources.settings.ingest
    window = resources.embedder.max_tokens
    size = cfg.chunk_tokens or default_chunk_size(window)
    overlap = cfg.chunk_overlap if cfg.chunk_overlap is not None else default_overlap(size)
    try:
        validate_chunking(size, overlap, window=window)
    except ChunkingConfigError as exc:
        raise SettingsError(f"invalid setting 'ingest.chunk_tokens': {exc}") from None
    state_url = ingest_state_url(resources.settings)
    signatures: SignatureSource = (
        SignatureStore(resources.settings.data_dir / "dedup.sqlite")
        if state_url is None
        else RedisSignatureStore(state_url)
    )
    return Ingestor(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=size,
        chunk_overlap=overlap,
        max_file_bytes=cfg.max_file_bytes,
        near_duplicate_threshold=cfg.near_duplicate_threshold,
        embed_batch=cfg.embed_batch,
        signatures=signatures,
        expansion=ExpansionLimits(
            max_expanded_bytes=cfg.max_expanded_bytes,
            max_ratio=cfg.max_expansion_ratio,
            max_nesting=cfg.max_nesting,
        ),
        sandbox=sandbox_limits(resources),
        parsers=parsers,
    )

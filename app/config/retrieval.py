"""The ``embed``, ``retrieval`` and ``rerank`` sections: how passages are found."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from app.config.section import Section

__all__ = ["EmbedSettings", "RerankSettings", "RetrievalSettings"]


class EmbedSettings(Section):
    """The embedding model: a local packaged model or an OpenAI-compatible endpoint."""

    provider: Literal["local", "openai"] = "local"
    model: str = "all-MiniLM-L6-v2"
    base_url: str | None = None
    api_key: SecretStr | None = None
    batch_size: int = Field(default=64, gt=0)
    """Passages per forward pass (local) or per request (openai)."""
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    dim: int | None = Field(default=None, gt=0)
    """openai: the vector dimension; None asks the server once."""
    max_tokens: int | None = Field(default=None, ge=16)
    """openai: tokens the model reads (chunk sizes derive from it). Local reads its own."""
    query_cache_size: int = Field(default=2048, ge=0)
    threads: int = Field(default=0, ge=0, le=256)
    """local: CPU threads for a batch of passages (ingestion); 0 uses every core."""
    query_threads: int = Field(default=1, ge=0, le=256)
    """local: CPU threads for query embeddings. One: a query is a small matrix, and a
    second thread only competes with the event loop for the cores (0 uses every core)."""
    precision: Literal["int8", "float32"] = "int8"
    """local: the exported model's weights. int8 (ONNX Runtime's dynamic quantization, one
    scale per channel) embeds about twice as fast as float32 with the same retrieval
    quality on the bundled BEIR subsets; the two kinds of vector can share an index."""
    cache_dir: Path | None = None
    """local: where the exported model is kept for the next process; None uses
    ``$XDG_CACHE_HOME/ragent`` (``~/.cache/ragent``)."""

    @model_validator(mode="after")
    def _remote_needs_url(self) -> EmbedSettings:
        if self.provider == "openai" and not self.base_url:
            raise ValueError("base_url is required when provider is 'openai'")
        if self.provider == "openai" and self.max_tokens is None:
            raise ValueError("max_tokens is required when provider is 'openai'")
        if self.provider == "local" and (self.dim, self.max_tokens) != (None, None):
            raise ValueError("dim and max_tokens come from the local model; set them for 'openai'")
        return self


class RetrievalSettings(Section):
    """Index engines and hybrid retrieval knobs."""

    vector_backend: Literal["embedded", "weaviate"] = "embedded"
    keyword_backend: Literal["embedded", "elasticsearch"] = "embedded"
    weaviate_url: str | None = None
    """Weaviate's REST endpoint, e.g. ``http://weaviate:8080``."""
    weaviate_grpc_port: int = Field(default=50051, gt=0, le=65535)
    """Weaviate's gRPC port, on the host of ``weaviate_url`` (searches and imports use it)."""
    elasticsearch_url: str | None = None
    elasticsearch_index: str = Field(
        default="ragent-chunks", pattern=r"^[a-z0-9][a-z0-9._-]{0,199}$"
    )
    """The Elasticsearch index of the chunks (created on first use): one per deployment
    that shares a cluster."""
    elasticsearch_shards: int = Field(default=1, gt=0, le=1024)
    """Primary shards of the index, used only when it is created."""
    elasticsearch_replicas: int = Field(default=1, ge=0, le=16)
    """Replicas of the index, used only when it is created (0 for a single node)."""
    weaviate_collection: str = Field(default="RagentChunk", pattern=r"^[A-Z][A-Za-z0-9_]{0,199}$")
    """The Weaviate collection of the chunks (created on first use)."""
    top_k: int = Field(default=20, gt=0, le=1000)
    top_n: int = Field(default=5, gt=0, le=100)
    rrf_k: int = Field(default=60, gt=0)
    fusion: Literal["rrf", "minmax", "zscore"] = "rrf"
    dense_weight: float = Field(default=1.0, ge=0)
    keyword_weight: float = Field(default=1.0, ge=0)
    dense_depth: int | None = Field(default=None, gt=0, le=1000)
    """Candidates from the vector engine; None uses ``top_k``."""
    keyword_depth: int | None = Field(default=None, gt=0, le=1000)
    """Candidates from the keyword engine; None uses ``top_k``."""
    engine_timeout_s: float = Field(default=5.0, gt=0, le=120)
    """Remote engines: the longest wait for one engine's search. An engine that fails or
    takes longer is left out of the turn, which is answered from the other one and marked
    ``degraded``; with neither, the request fails with 503."""

    @model_validator(mode="after")
    def _engines_need_urls(self) -> RetrievalSettings:
        if self.vector_backend == "weaviate" and not self.weaviate_url:
            raise ValueError("weaviate_url is required when vector_backend is 'weaviate'")
        if self.keyword_backend == "elasticsearch" and not self.elasticsearch_url:
            raise ValueError(
                "elasticsearch_url is required when keyword_backend is 'elasticsearch'"
            )
        return self


class RerankSettings(Section):
    """Optional reranking of the first ``depth`` fused hits."""

    provider: Literal["none", "cross-encoder", "http"] = "none"
    model: str | None = None
    """cross-encoder: a local model directory; http: the model name sent to the server."""
    base_url: str | None = None
    """http: an OpenAI-compatible server; ``{base_url}/rerank`` is called."""
    protocol: Literal["jina", "tei"] = "jina"
    """http: the request shape. ``jina`` (vLLM, llama.cpp's server, Jina, Cohere):
    ``{model, query, documents, top_n}``; ``tei`` (Text Embeddings Inference):
    ``{query, texts}``, at most ``batch_size`` texts a request."""
    api_key: SecretStr | None = None
    depth: int = Field(default=20, gt=0, le=1000)
    """Fused hits reranked (never fewer than ``retrieval.top_n``)."""
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    batch_size: int = Field(default=32, gt=0)
    """cross-encoder: pairs per forward pass; http with ``tei``: texts per request."""

    @model_validator(mode="after")
    def _provider_needs(self) -> RerankSettings:
        if self.provider != "none" and not self.model:
            raise ValueError(f"model is required when provider is {self.provider!r}")
        if self.provider == "http" and not self.base_url:
            raise ValueError("base_url is required when provider is 'http'")
        return self

"""Deployment settings: ``configs/<profile>.yaml`` plus ``RAGENT_*`` environment overrides.

Settings are loaded and validated once at start. A bad value raises
:class:`SettingsError` with a one-line message that names the key, so the CLI
and the server can refuse to start cleanly.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.observability.config import ObservabilitySettings

__all__ = [
    "CONFIG_DIR",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class SettingsError(ValueError):
    """A configuration problem, with a message fit for one line of output."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEndpoint(_Section):
    """One more OpenAI-compatible model (a tier or a fallback); unset fields come from ``llm``."""

    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    """Environment variable holding this endpoint's key; None: the key of ``llm``."""
    timeout_s: float | None = Field(default=None, gt=0)
    context_window: int | None = Field(default=None, ge=512)
    tokenizer: str | None = None


class LLMSettings(_Section):
    """The chat model. No ``base_url`` means the offline extractive answerer."""

    base_url: str | None = None
    model: str = "offline-extractive"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    """Per call: the longest wait for a model's first token."""
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    max_tokens: int = Field(default=1024, gt=0)
    context_window: int = Field(default=8192, ge=512)
    tokenizer: str | None = None
    """A local ``tokenizer.json`` or a Hugging Face repo id already in the local cache."""
    min_relevance: float = Field(default=0.3, ge=0, le=1)
    stall_timeout_s: float = Field(default=10.0, gt=0)
    """The longest silence between two chunks of a stream."""
    deadline_s: float | None = Field(default=None, gt=0)
    """Time for remote models to start answering before the offline answerer does; None:
    ``timeout_s``."""
    backoff_s: float = Field(default=0.2, ge=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    offline_fallback: bool = True
    tiers: dict[Literal["small", "large", "code"], ModelEndpoint] = Field(default_factory=dict)
    fallbacks: list[ModelEndpoint] = Field(default_factory=list)
    """Secondary models, tried in order after the tier's own model."""
    router: Literal["rules", "llm"] = "rules"
    small_max_words: int = Field(default=40, ge=1)
    min_confidence: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _endpoints_need_urls(self) -> LLMSettings:
        named = [
            *(f"tiers.{k}" for k in self.tiers),
            *(f"fallbacks.{i}" for i in range(len(self.fallbacks))),
        ]
        for name, endpoint in zip(named, [*self.tiers.values(), *self.fallbacks], strict=True):
            if not (endpoint.base_url or self.base_url):
                raise ValueError(f"{name}: base_url is required (here or in llm.base_url)")
        if self.router == "llm" and not self.base_url:
            raise ValueError("router 'llm' needs a base_url")
        return self


class EmbedSettings(_Section):
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

    @model_validator(mode="after")
    def _remote_needs_url(self) -> EmbedSettings:
        if self.provider == "openai" and not self.base_url:
            raise ValueError("base_url is required when provider is 'openai'")
        if self.provider == "openai" and self.max_tokens is None:
            raise ValueError("max_tokens is required when provider is 'openai'")
        if self.provider == "local" and (self.dim, self.max_tokens) != (None, None):
            raise ValueError("dim and max_tokens come from the local model; set them for 'openai'")
        return self


class RetrievalSettings(_Section):
    """Index engines and hybrid retrieval knobs."""

    vector_backend: Literal["embedded", "weaviate"] = "embedded"
    keyword_backend: Literal["embedded", "elasticsearch"] = "embedded"
    weaviate_url: str | None = None
    elasticsearch_url: str | None = None
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

    @model_validator(mode="after")
    def _engines_need_urls(self) -> RetrievalSettings:
        if self.vector_backend == "weaviate" and not self.weaviate_url:
            raise ValueError("weaviate_url is required when vector_backend is 'weaviate'")
        if self.keyword_backend == "elasticsearch" and not self.elasticsearch_url:
            raise ValueError(
                "elasticsearch_url is required when keyword_backend is 'elasticsearch'"
            )
        return self


class RerankSettings(_Section):
    """Optional reranking of the first ``depth`` fused hits."""

    provider: Literal["none", "cross-encoder", "http"] = "none"
    model: str | None = None
    """cross-encoder: a local model directory; http: the model name sent to the server."""
    base_url: str | None = None
    """http: an OpenAI-compatible server; ``{base_url}/rerank`` is called."""
    api_key: SecretStr | None = None
    depth: int = Field(default=20, gt=0, le=1000)
    """Fused hits reranked (never fewer than ``retrieval.top_n``)."""
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    batch_size: int = Field(default=32, gt=0)

    @model_validator(mode="after")
    def _provider_needs(self) -> RerankSettings:
        if self.provider != "none" and not self.model:
            raise ValueError(f"model is required when provider is {self.provider!r}")
        if self.provider == "http" and not self.base_url:
            raise ValueError("base_url is required when provider is 'http'")
        return self


class CheckpointSettings(_Section):
    """Where thread state is checkpointed."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "redis://localhost:6379/0"


class IngestSettings(_Section):
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


class LimitSettings(_Section):
    """Guards and budgets applied by the graph."""

    max_input_chars: int = Field(default=8000, gt=0)
    max_output_chars: int = Field(default=16000, gt=0)
    max_tool_steps: int = Field(default=6, ge=0, le=50)
    tool_timeout_s: float = Field(default=10.0, gt=0)
    history_token_budget: int = Field(default=3000, ge=256)
    compress_ratio: float = Field(default=0.7, gt=0, lt=1)
    keep_recent_messages: int = Field(default=6, ge=2)
    max_tool_calls: int = Field(default=12, ge=0, le=500)
    """Tool calls one run (one question) may make in all."""
    max_run_tokens: int = Field(default=60_000, ge=256)
    """Model tokens (prompt and reply) one run may spend before it stops calling tools."""
    max_run_seconds: float = Field(default=120.0, gt=0)
    """Wall time of one run; time spent waiting for an approval does not count."""


ToolPolicy = Literal["allow", "require_approval", "deny"]


class ToolSettings(_Section):
    """Which tools the model may call, under which policy, and how often."""

    enabled: list[str] = Field(
        default_factory=lambda: [
            "knowledge_search",
            "calculator",
            "current_time",
            "convert_units",
            "create_note",
        ]
    )
    """Tools offered to the model; ``http_get`` is off until it is listed here."""
    policies: dict[str, ToolPolicy] = Field(default_factory=dict)
    """Per tool; unset: read and compute tools are allowed, write tools need approval."""
    http_allowlist: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) that ``http_get`` may fetch; empty refuses all."""
    http_max_bytes: int = Field(default=200_000, ge=1024)
    max_output_chars: int = Field(default=4000, ge=200)
    max_repeats: int = Field(default=3, ge=2, le=20)
    """The same call (tool and arguments) this many times in one run stops the run."""
    rate_limit_per_user: str = "60/minute"
    """Calls one user may make to all tools together, e.g. ``60/minute``."""
    rate_limits: dict[str, str] = Field(default_factory=lambda: {"http_get": "10/minute"})
    """Per tool and user, e.g. ``{"http_get": "10/minute"}``."""
    rate_limit_storage: str = "memory://"
    """``memory://`` (one process) or ``redis://host:port/db`` (shared by all replicas)."""
    audit_path: Path | None = None
    """JSON-lines file of audit records (None: ``<data_dir>/audit.jsonl``); they are also
    logged to ``ragent.audit``."""

    @model_validator(mode="after")
    def _valid_limits(self) -> ToolSettings:
        from limits import parse_many

        for name, rate in [("rate_limit_per_user", self.rate_limit_per_user)] + [
            (f"rate_limits.{tool}", rate) for tool, rate in self.rate_limits.items()
        ]:
            try:
                parse_many(rate)
            except ValueError:
                raise ValueError(f"{name}: {rate!r} is not a rate such as '10/minute'") from None
        if not self.rate_limit_storage.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("rate_limit_storage must start with memory:// or redis://")
        return self


class MemorySettings(_Section):
    """Long-term memory per user, and how the running summary is written."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    """``sqlite``: ``<data_dir>/memory.sqlite``; ``redis``: RediSearch and RedisJSON needed."""
    redis_url: str | None = None
    """None: ``checkpoint.redis_url``."""
    extraction: Literal["auto", "llm", "explicit", "off"] = "auto"
    """``explicit``: statements such as "remember that ..."; ``llm`` adds facts the model
    finds; ``auto``: ``llm`` when a generative model is configured."""
    summarizer: Literal["auto", "model", "extractive"] = "auto"
    """Who writes the running summary; ``auto``: the model when it is generative."""
    recall_k: int = Field(default=5, ge=0, le=50)
    min_score: float = Field(default=0.0, ge=-1, le=1)
    """Lowest cosine similarity a recalled memory needs."""
    ttl_days: float | None = Field(default=None, gt=0)
    """Memories not updated for this long are forgotten; None keeps them."""
    max_per_user: int = Field(default=1000, ge=1)


class ServerSettings(_Section):
    """The HTTP API (``ragent serve``): auth, limits, and where its state lives."""

    auth: bool = True
    """Refuse requests without a valid API key; ``ragent serve --no-auth`` turns it off."""
    redis_url: str | None = None
    """None: keys and the thread list in ``<data_dir>/server.sqlite``, and rate limits,
    idempotency records, stream events and jobs in this process. Set: all of them in
    Redis, shared by every replica."""
    rate_limit: str = "120/minute"
    """Per API key, as a token bucket: this rate refills it, ``rate_burst`` holds."""
    rate_burst: int | None = Field(default=None, ge=1)
    """Bucket size (requests allowed at once); None: the amount of ``rate_limit``."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """Largest JSON body."""
    max_upload_bytes: int = Field(default=100_000_000, ge=1024)
    """Largest ``POST /v1/ingest`` body (all files together)."""
    max_upload_files: int = Field(default=50, ge=1)
    request_timeout_s: float = Field(default=120.0, gt=0)
    """A request that has not started its response by then gets a 504."""
    idempotency_ttl_s: int = Field(default=86_400, ge=1)
    events_ttl_s: int = Field(default=600, ge=1)
    """How long a stream's events stay after its last one, for ``Last-Event-ID`` replay
    (and streamed idempotent retries); in this process they take memory meanwhile."""
    jobs_ttl_s: int = Field(default=7 * 86_400, ge=1)
    ingest_url_allowlist: list[str] = Field(default_factory=list)
    """Hosts (``host`` or ``host:port``) ``POST /v1/ingest`` may fetch; empty refuses URLs."""

    @model_validator(mode="after")
    def _valid_rate(self) -> ServerSettings:
        from limits import parse

        try:
            parse(self.rate_limit)
        except ValueError:
            raise ValueError(
                f"rate_limit: {self.rate_limit!r} is not a rate such as '120/minute'"
            ) from None
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return self


class Settings(BaseSettings):
    """All deployment settings. Build with :func:`load_settings`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="RAGENT_",
        env_nested_delimiter="_",
        # RAGENT_LLM_BASE_URL -> llm.base_url: split once, field names keep their underscores.
        env_nested_max_split=1,
        extra="forbid",
    )

    profile: str = "default"
    data_dir: Path = Path(".ragent")
    tenant_id: str = Field(default="default", min_length=1)
    llm: LLMSettings = LLMSettings()
    embed: EmbedSettings = EmbedSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    rerank: RerankSettings = RerankSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    ingest: IngestSettings = IngestSettings()
    limits: LimitSettings = LimitSettings()
    tools: ToolSettings = ToolSettings()
    memory: MemorySettings = MemorySettings()
    server: ServerSettings = ServerSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let the environment override the YAML file, which arrives as init kwargs."""
        return (env_settings, init_settings)


def _config_path(config: str | Path | None) -> Path:
    if config is not None:
        return Path(config)
    if env_path := os.environ.get("RAGENT_CONFIG"):
        return Path(env_path)
    profile = os.environ.get("RAGENT_PROFILE", "default")
    directory = Path(os.environ.get("RAGENT_CONFIG_DIR", CONFIG_DIR))
    path = directory / f"{profile}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise SettingsError(f"unknown profile '{profile}' in {directory} (known: {known})")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    if (
        not path.exists()
        and "RAGENT_CONFIG" not in os.environ
        and path.parent == Path(os.environ.get("RAGENT_CONFIG_DIR", CONFIG_DIR))
    ):
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SettingsError(f"unknown profile '{path.stem}' (known: {', '.join(known)})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"malformed YAML in config {path}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config {path} must be a mapping of keys, not {type(data).__name__}")
    return data


def _refuse_secrets(values: dict[str, Any], path: Path) -> None:
    """Secrets come only from the environment: a key in a config file is refused."""
    for section, body in values.items():
        if isinstance(body, dict) and body.get("api_key") is not None:
            env = f"RAGENT_{section}_API_KEY".upper()
            raise SettingsError(
                f"config {path} sets '{section}.api_key': secrets come only from the "
                f"environment; set {env} instead"
            )


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"].removeprefix("Value error, ")
    env = "RAGENT_" + "_".join(str(part) for part in first["loc"][:2]).upper()
    return f"invalid setting '{key}': {message} (from the config file or {env})"


def load_settings(config: str | Path | None = None) -> Settings:
    """Load and validate settings once.

    Args:
        config: A YAML file. Defaults to ``$RAGENT_CONFIG``, else
            ``$RAGENT_CONFIG_DIR/$RAGENT_PROFILE.yaml`` (the repo's ``configs/`` and
            profile ``default`` when unset).

    Returns:
        The validated settings, with ``data_dir`` made absolute.

    Raises:
        SettingsError: The file is unreadable or malformed, or a value is invalid.
    """
    path = _config_path(config)
    values = _read_yaml(path)
    _refuse_secrets(values, path)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    settings.data_dir = settings.data_dir.expanduser().resolve()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, loaded on first use."""
    return load_settings()

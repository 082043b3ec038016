"""The ``llm`` section: the chat model, its tiers and fallbacks, and the router."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from app.config.section import Section

__all__ = ["LLMSettings", "ModelEndpoint", "ToolCallRecovery"]

ToolCallRecovery = Literal["auto", "on", "off"]
"""Whether tool calls a model writes as text are recovered (:mod:`app.llm.tool_recovery`):
``auto`` recovers for every server but OpenAI's own API, whose models call tools natively."""


class ModelEndpoint(Section):
    """One more OpenAI-compatible model (a tier or a fallback); unset fields come from ``llm``."""

    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    """Environment variable holding this endpoint's key; None: the key of ``llm``."""
    timeout_s: float | None = Field(default=None, gt=0)
    context_window: int | None = Field(default=None, ge=512)
    tokenizer: str | None = None
    tool_call_recovery: ToolCallRecovery | None = None
    """None: the setting of ``llm``."""


class LLMSettings(Section):
    """The chat model. No ``base_url`` means the offline extractive answerer."""

    base_url: str | None = None
    model: str = "offline-extractive"
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    """Per attempt: the longest wait for a model's first token (never past the turn's
    deadline, ``deadline_s``)."""
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
    """Per turn: how long the turn's model calls, all together, may wait without a remote
    reply before the offline answerer replies (a remote reply restores it); None:
    ``timeout_s``."""
    max_tool_args_bytes: int = Field(default=65536, ge=1024)
    """The most bytes of tool-call arguments one streamed reply may carry, all calls
    together; a call past it is refused, and the model is told why."""
    tool_call_recovery: ToolCallRecovery = "auto"
    """Read tool calls that a model writes in its text (JSON, Hermes ``<tool_call>`` tags,
    Llama ``<|python_tag|>``, Mistral ``[TOOL_CALLS]``) as tool calls: open models on
    llama.cpp or vLLM often do, when the server's parser does not match their format."""
    backoff_s: float = Field(default=0.2, ge=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    offline_fallback: bool = True
    tiers: dict[Literal["small", "large", "code"], ModelEndpoint] = Field(default_factory=dict)
    fallbacks: list[ModelEndpoint] = Field(default_factory=list)
    """Secondary models, tried in order after the tier's own model."""
    check_citations: Literal["auto", "on", "off"] = "auto"
    """Check a RAG answer's citations against the sources (:mod:`app.text.attribution`):
    each claim cites the source that supports it, unsupported claims are dropped.
    ``auto``: for a local model (``local_gguf``), whose small models seldom cite right."""
    local_gguf: Path | None = None
    """A GGUF model file to serve with llama.cpp on this machine (no GPU, no network);
    ``base_url`` then defaults to that server (:mod:`app.llm.local`)."""
    local_port: int = Field(default=8079, ge=1024, le=65535)
    """The loopback port of the local model server; one already running there is used."""
    local_threads: int | None = Field(default=None, ge=1, le=512)
    """CPU threads of the local model server; None: every core."""
    local_startup_timeout_s: float = Field(default=120.0, gt=0)
    """The longest wait for the local model server to load its model."""
    router: Literal["rules", "llm"] = "rules"
    small_max_words: int = Field(default=40, ge=1)
    min_confidence: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _endpoints_need_urls(self) -> LLMSettings:
        if self.local_gguf is not None:
            local = f"http://127.0.0.1:{self.local_port}/v1"
            if self.base_url is None:
                self.base_url = local
            elif self.base_url.rstrip("/") != local:
                raise ValueError(
                    "local_gguf: the local model server is at "
                    f"{local}; leave base_url unset (it is {self.base_url})"
                )
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

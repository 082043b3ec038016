"""Per-run knobs and identity, passed to the graph as ``context=Context(...)``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app import prompts
from app.retrieval.types import NAMESPACE_PATTERN

__all__ = ["Context"]


@dataclass(kw_only=True)
class Context:
    """Runtime context read by nodes through ``Runtime[Context]``.

    Identity fields come from authentication (or the CLI), never from the prompt.
    """

    tenant_id: str = field(
        default="default", metadata={"description": "Tenant that owns the data searched."}
    )
    user_id: str = field(
        default="anonymous", metadata={"description": "The user on whose behalf the run acts."}
    )
    acl_groups: list[str] = field(
        default_factory=list,
        metadata={"description": "Groups of the user; restricted chunks need one in common."},
    )
    system_prompt: str = field(
        default=prompts.SYSTEM_PROMPT,
        metadata={
            "description": "System prompt; {now} is replaced with the current time, to the minute."
        },
    )
    namespace: str | None = field(
        default=None,
        metadata={
            "description": "Search only this namespace of the tenant (as filled by ingestion); "
            "None searches the tenant's own documents."
        },
    )
    hybrid: bool = field(
        default=True,
        metadata={"description": "Dense and BM25 search fused (true), or dense search alone."},
    )
    top_k: int | None = field(
        default=None,
        metadata={
            "description": "Candidates wanted from each search engine; the configured "
            "retrieval.top_k grows to it, never shrinks. None uses the configured value."
        },
    )
    top_n: int | None = field(
        default=None,
        metadata={"description": "Sources kept after fusion; None uses the configured value."},
    )
    tools: list[str] | None = field(
        default=None,
        metadata={
            "description": "Names of the tools offered to the model; None offers every "
            "enabled tool, an empty list none. Names the server does not offer are ignored."
        },
    )
    client_tools: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={
            "description": "Tools the caller runs itself, as OpenAI function specs, offered "
            "alongside the server's tools: a call to one pauses the run until the caller "
            "sends its result."
        },
    )
    tool_choice: str | None = field(
        default=None,
        metadata={
            "description": "OpenAI's tool_choice for the first model call of a request: "
            "'auto' (None), 'required', or the name of an offered tool; later calls of the "
            "request, after the server's tools ran, choose freely."
        },
    )
    temperature: float | None = field(
        default=None,
        metadata={"description": "Sampling temperature, 0 to 2; None uses llm.temperature."},
    )
    top_p: float | None = field(
        default=None,
        metadata={"description": "Nucleus sampling mass, above 0 up to 1; None uses llm.top_p."},
    )
    max_tokens: int | None = field(
        default=None,
        metadata={"description": "Most tokens in one model reply; None uses llm.max_tokens."},
    )
    stop: list[str] = field(
        default_factory=list,
        metadata={"description": "Up to 4 sequences that end the model's reply."},
    )
    seed: int | None = field(
        default=None,
        metadata={"description": "Sampling seed, for servers that support it; None uses llm.seed."},
    )
    cache: bool = field(
        default=True,
        metadata={
            "description": "Use the answer cache when the deployment enables it; false "
            "bypasses it: the turn neither reads nor writes it."
        },
    )
    response_format: dict[str, Any] | None = field(
        default=None,
        metadata={
            "description": "OpenAI's response_format for the answer (json_object, or "
            "json_schema with the client's schema); None or type text: free text. A "
            "reply that does not conform gets one repair."
        },
    )

    def __post_init__(self) -> None:
        """Refuse retrieval and decoding parameters that no run could use.

        Raises:
            ValueError: A parameter is out of range, naming it.
        """
        if self.namespace is not None and not re.fullmatch(NAMESPACE_PATTERN, self.namespace):
            raise ValueError(f"namespace must match {NAMESPACE_PATTERN}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.tools is not None and any(not name for name in self.tools):
            raise ValueError("tools must name tools")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ValueError("temperature must be between 0 and 2")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be above 0 and at most 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if len(self.stop) > 4 or any(not s for s in self.stop):
            raise ValueError("stop takes at most 4 non-empty sequences")

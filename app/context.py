"""Per-run knobs and identity, passed to the graph as ``context=Context(...)``."""

from __future__ import annotations

from dataclasses import dataclass, field

from app import prompts

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
        metadata={"description": "System prompt; {now} is replaced with the current time."},
    )
    top_n: int | None = field(
        default=None,
        metadata={"description": "Sources kept after fusion; None uses the configured value."},
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

    def __post_init__(self) -> None:
        """Refuse decoding parameters that no server would accept.

        Raises:
            ValueError: A parameter is out of range, naming it.
        """
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ValueError("temperature must be between 0 and 2")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be above 0 and at most 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if len(self.stop) > 4 or any(not s for s in self.stop):
            raise ValueError("stop takes at most 4 non-empty sequences")

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

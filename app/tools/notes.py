"""``create_note``: save a note for the user (a write, so it needs approval by default)."""

from __future__ import annotations

from typing import Annotated

from langchain_core.tools import tool
from pydantic import Field

from app.memory.longterm import MemoryBank
from app.tools.context import Caller
from app.tools.risk import with_risk

__all__ = ["create_note"]


@tool(parse_docstring=True)
async def create_note(
    title: Annotated[str, Field(min_length=1, max_length=200)],
    text: Annotated[str, Field(min_length=1, max_length=4000)],
    caller: Caller,
) -> str:
    """Save a note for the user, to keep something for later. Only when the user asks.

    Args:
        title: A short title.
        text: What the note says.
        caller: Injected: who the call acts for (never shown to the model).
    """
    if caller.store is None:
        raise ValueError("notes are not available: no store is configured")
    notes = MemoryBank(caller.store, caller.memory, kind="notes")
    note = await notes.remember(
        caller.tenant_id,
        caller.user_id,
        text,
        origin="tool",
        extra={"title": " ".join(title.split())},
        unique=True,
    )
    return f"Saved the note {title!r} (id {note.id})."


with_risk(create_note, "write")

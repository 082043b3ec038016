"""The base of every settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A section of the settings file: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

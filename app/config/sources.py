"""Settings of the sources beyond files (``sources:``, a list)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.config.section import Section

__all__ = ["SqlSourceSettings"]


class SqlSourceSettings(Section):
    """A SQL database read through a query (app/sources/sql.py)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: Literal["sql"] = "sql"
    url: str = Field(min_length=1)
    """A SQLAlchemy URL: ``postgresql+psycopg://user@host/db``, ``sqlite:///path``."""
    query: str = Field(min_length=1)
    id_column: str
    text_columns: list[str] = Field(min_length=1)
    title_column: str | None = None
    metadata_columns: list[str] = []
    acl_column: str | None = None
    updated_at_column: str | None = None
    tenant_id: str | None = None
    """Whose index it feeds; None: the settings' ``tenant_id``."""
    timeout_s: float = Field(default=30.0, gt=0)

"""The sources named in the settings, as connectors."""

from __future__ import annotations

from app.config.sources import SqlSourceSettings
from app.settings import Settings, SettingsError
from app.sources.sql import SqlSource, SqlSourceError

__all__ = ["configured_source", "source_settings"]


def source_settings(settings: Settings, name: str) -> SqlSourceSettings:
    """Return the configured source called ``name``.

    Raises:
        SettingsError: No source has that name.
    """
    for cfg in settings.sources:
        if cfg.name == name:
            return cfg
    known = ", ".join(c.name for c in settings.sources) or "none"
    raise SettingsError(f"no source named {name!r} in 'sources' (configured: {known})")


def configured_source(cfg: SqlSourceSettings) -> SqlSource:
    """Return the connector of a configured source.

    Raises:
        SettingsError: A column named in it is not a plain identifier.
    """
    try:
        return SqlSource(
            name=cfg.name,
            url=cfg.url,
            query=cfg.query,
            id_column=cfg.id_column,
            text_columns=tuple(cfg.text_columns),
            title_column=cfg.title_column,
            metadata_columns=tuple(cfg.metadata_columns),
            acl_column=cfg.acl_column,
            updated_at_column=cfg.updated_at_column,
            timeout_s=cfg.timeout_s,
        )
    except SqlSourceError as exc:
        raise SettingsError(f"invalid setting 'sources': {exc}") from None

"""The sources named in the settings, as connectors."""

from __future__ import annotations

from pathlib import Path

from app.config.sources import SourceSettings, WebSourceSettings
from app.settings import Settings, SettingsError
from app.sources.connector import Connector
from app.sources.sql import SqlSource, SqlSourceError
from app.sources.web import WebSource, WebSourceError
from app.sources.web_pages import Pages, PageStore, RedisPageStore

__all__ = ["configured_source", "settings_source", "source_settings"]


def source_settings(settings: Settings, name: str) -> SourceSettings:
    """Return the configured source called ``name``.

    Raises:
        SettingsError: No source has that name.
    """
    for cfg in settings.sources:
        if cfg.name == name:
            return cfg
    known = ", ".join(c.name for c in settings.sources) or "none"
    raise SettingsError(f"no source named {name!r} in 'sources' (configured: {known})")


def settings_source(settings: Settings, cfg: SourceSettings) -> Connector:
    """Return the connector of ``cfg``, its pages' validators kept where its cursor is.

    That is Redis when ``server.redis_url`` is set (every replica reads them), else the
    data folder's ``sources.sqlite``.

    Raises:
        SettingsError: As :func:`configured_source`.
    """
    pages: Pages | None = None
    if isinstance(cfg, WebSourceSettings) and settings.server.redis_url:
        import redis

        client = redis.Redis.from_url(settings.server.redis_url)
        pages = RedisPageStore(client, cfg.tenant_id or settings.tenant_id)
    return configured_source(cfg, data_dir=settings.data_dir, pages=pages)


def configured_source(
    cfg: SourceSettings, *, data_dir: Path | None = None, pages: Pages | None = None
) -> Connector:
    """Return the connector of a configured source.

    Args:
        cfg: The source's settings.
        data_dir: The data folder (``settings.data_dir``); a web source keeps its pages'
            validators there, in ``sources.sqlite``, unless ``pages`` is given.
        pages: Where a web source keeps its pages' validators instead (Redis).

    Raises:
        SettingsError: A column named in it is not a plain identifier, a web source's URLs
            are not http(s), or a web source is built without ``data_dir``.
    """
    if isinstance(cfg, WebSourceSettings):
        return _web_source(cfg, data_dir, pages)
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
            lookback_s=cfg.lookback_s,
        )
    except SqlSourceError as exc:
        raise SettingsError(f"invalid setting 'sources': {exc}") from None


def _web_source(cfg: WebSourceSettings, data_dir: Path | None, pages: Pages | None) -> WebSource:
    if pages is None:
        if data_dir is None:
            raise SettingsError(f"source {cfg.name!r}: a web source needs the data folder")
        pages = PageStore(data_dir / "sources.sqlite")
    try:
        return WebSource(
            name=cfg.name,
            store=pages,
            sitemap=cfg.sitemap,
            seeds=tuple(cfg.seeds),
            hosts=tuple(cfg.hosts),
            private_hosts=tuple(cfg.private_hosts),
            acl=tuple(cfg.acl),
            max_pages=cfg.max_pages,
            max_depth=cfg.max_depth,
            user_agent=cfg.user_agent,
            max_crawl_delay_s=cfg.max_crawl_delay_s,
            max_page_bytes=cfg.max_page_bytes,
            request_timeout_s=cfg.request_timeout_s,
            crawl_timeout_s=cfg.crawl_timeout_s,
        )
    except WebSourceError as exc:
        raise SettingsError(f"invalid setting 'sources': {exc}") from None

"""Deployment settings: ``app/configs/<profile>.yaml`` plus ``RAGENT_*`` overrides.

The overrides come from the environment and from a ``.env`` file in the working
directory (its ``RAGENT_*`` lines; the environment wins over it, and it wins over the
YAML file). Secrets come only from these two, never from the YAML file.

Settings are loaded and validated once at start. A bad value raises
:class:`SettingsError` with a one-line message that names the key, so the CLI
and the server can refuse to start cleanly.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.config.cache import CacheSettings
from app.config.ingest import IngestSettings
from app.config.llm import LLMSettings, ModelEndpoint
from app.config.mcp import McpServerSettings, McpSettings
from app.config.memory import CheckpointSettings, MemorySettings
from app.config.observability import ObservabilitySettings
from app.config.retrieval import EmbedSettings, RerankSettings, RetrievalSettings
from app.config.server import ServerSettings
from app.config.sources import SourceSettings
from app.config.tools import LimitSettings, ToolPolicy, ToolSettings

__all__ = [
    "CONFIG_DIR",
    "CacheSettings",
    "CheckpointSettings",
    "EmbedSettings",
    "IngestSettings",
    "LLMSettings",
    "LimitSettings",
    "McpServerSettings",
    "McpSettings",
    "MemorySettings",
    "ModelEndpoint",
    "RerankSettings",
    "RetrievalSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "ToolPolicy",
    "ToolSettings",
    "get_settings",
    "load_settings",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The profiles shipped with the package; ``RAGENT_CONFIG_DIR`` points elsewhere."""
DOTENV = ".env"
_PREFIX = "RAGENT_"


def _dotenv() -> dict[str, str]:
    """The ``RAGENT_*`` lines of ``./.env`` (none when there is no such file)."""
    path = Path(DOTENV)
    if not path.is_file():
        return {}
    values = dotenv_values(path, encoding="utf-8")
    return {k: v for k, v in values.items() if k.startswith(_PREFIX) and v is not None}


def _env(name: str, default: str) -> str:
    """``name`` from the environment, else from ``./.env``, else ``default``."""
    return os.environ.get(name) or _dotenv().get(name) or default


class _DotEnvSource(EnvSettingsSource):
    """``RAGENT_*`` from ``./.env``, parsed like the environment; other lines are ignored."""

    def _load_env_vars(self) -> dict[str, str | None]:
        return {k.lower(): v for k, v in _dotenv().items()}


class SettingsError(ValueError):
    """A configuration problem, with a message fit for one line of output."""


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
    mcp: McpSettings = McpSettings()
    cache: CacheSettings = CacheSettings()
    sources: list[SourceSettings] = []

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment, then ``./.env``, override the YAML file (the init kwargs)."""
        return (env_settings, _DotEnvSource(settings_cls), init_settings)


def _config_path(config: str | Path | None) -> Path:
    if config is not None:
        return Path(config)
    if env_path := _env("RAGENT_CONFIG", ""):
        return Path(env_path)
    profile = _env("RAGENT_PROFILE", "default")
    directory = Path(_env("RAGENT_CONFIG_DIR", str(CONFIG_DIR)))
    path = directory / f"{profile}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise SettingsError(f"unknown profile '{profile}' in {directory} (known: {known})")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    if (
        not path.exists()
        and not _env("RAGENT_CONFIG", "")
        and path.parent == Path(_env("RAGENT_CONFIG_DIR", str(CONFIG_DIR)))
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
            ``$RAGENT_CONFIG_DIR/$RAGENT_PROFILE.yaml`` (the packaged ``app/configs/``
            and profile ``default`` when unset); each variable may also come from
            ``./.env``.

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

"""Write settings with tuned fusion parameters as a config file ragent loads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from app.evals.params import FusionParams
from app.settings import Settings, load_settings

__all__ = ["write_config"]


def _plain(value: Any) -> Any:
    """Settings values as YAML-safe data; secrets are dropped (they come from the environment)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, SecretStr)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_config(
    settings: Settings, params: FusionParams, path: Path, *, comments: Sequence[str] = ()
) -> Settings:
    """Write ``settings`` with ``params`` as ``retrieval.*`` to a YAML config file.

    Only values that differ from the built-in defaults are written, plus the profile and
    every fusion parameter. ``data_dir`` and secrets are left out, so the file can be
    shared: they still come from ``RAGENT_DATA_DIR`` and the other ``RAGENT_*`` variables.

    Args:
        settings: The configuration the parameters were tuned for.
        params: The fusion parameters to record.
        path: The file to write (its folder must exist).
        comments: Lines written as ``#`` comments at the top.

    Returns:
        The settings loaded back from the file (the environment still overrides it).

    Raises:
        SettingsError: The written file does not load (a bug, never expected).
        OSError: The file cannot be written.
    """
    data = _plain(settings.model_dump(exclude_defaults=True, exclude={"data_dir", "profile"}))
    retrieval = {**data.pop("retrieval", {}), **params.as_dict()}
    body = {"profile": settings.profile, **data, "retrieval": retrieval}
    header = "".join(f"# {line}\n" for line in comments)
    path.write_text(header + yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return load_settings(path)

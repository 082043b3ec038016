"""The tools, limits and memory settings: defaults, environment overrides, clear errors."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError, load_settings


def test_defaults_keep_http_off_and_writes_behind_approval(settings: Settings) -> None:
    assert "http_get" not in settings.tools.enabled and settings.tools.http_allowlist == []
    assert settings.tools.policies == {} and settings.tools.rate_limit_storage == "memory://"
    assert (settings.memory.backend, settings.memory.ttl_days) == ("sqlite", None)
    assert (settings.limits.max_tool_calls, settings.limits.max_run_seconds) == (12, 120.0)


def test_environment_sets_maps_and_lists(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGENT_TOOLS_POLICIES", '{"create_note": "allow"}')
    monkeypatch.setenv("RAGENT_TOOLS_HTTP_ALLOWLIST", '["api.example.com:443"]')
    monkeypatch.setenv("RAGENT_MEMORY_TTL_DAYS", "30")
    loaded = load_settings()
    assert loaded.tools.policies == {"create_note": "allow"}
    assert loaded.tools.http_allowlist == ["api.example.com:443"]
    assert loaded.memory.ttl_days == 30


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RAGENT_TOOLS_RATE_LIMITS", '{"calculator": "often"}', "'often' is not a rate"),
        ("RAGENT_TOOLS_RATE_LIMIT_STORAGE", "mongodb://x", "must start with memory:// or redis://"),
        ("RAGENT_TOOLS_POLICIES", '{"calculator": "maybe"}', "tools.policies.calculator"),
        ("RAGENT_MEMORY_BACKEND", "postgres", "memory.backend"),
        ("RAGENT_LIMITS_MAX_RUN_SECONDS", "0", "limits.max_run_seconds"),
    ],
)
def test_bad_values_name_the_setting(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()

"""The ``llm`` settings: environment overrides, tiers and fallbacks, and what they build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.llm.factory import build_models
from app.llm.fallback.chain import FallbackChatModel
from app.llm.offline.answerer import ExtractiveAnswerer
from app.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("env", "value", "field", "expected"),
    [
        ("RAGENT_LLM_BASE_URL", "http://127.0.0.1:8000/v1", "base_url", "http://127.0.0.1:8000/v1"),
        ("RAGENT_LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct", "model", "Qwen/Qwen2.5-7B-Instruct"),
        ("RAGENT_LLM_TIMEOUT_S", "4.5", "timeout_s", 4.5),
        ("RAGENT_LLM_STALL_TIMEOUT_S", "2", "stall_timeout_s", 2.0),
        ("RAGENT_LLM_ROUTER", "rules", "router", "rules"),
    ],
)
def test_each_primary_endpoint_variable_works_without_a_config_edit(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    assert getattr(load_settings().llm, field) == expected


def test_the_api_key_comes_from_the_environment_and_stays_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGENT_LLM_API_KEY", "sk-secret")
    llm = load_settings().llm
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(llm)


def test_tiers_and_fallbacks_build_chains_ending_offline(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "llm:\n"
        "  base_url: http://127.0.0.1:8000/v1\n"
        "  model: big\n"
        "  context_window: 32768\n"
        "  tiers:\n"
        "    small: {model: small, context_window: 4096}\n"
        "    code: {model: coder, base_url: http://127.0.0.1:8001/v1}\n"
        "  fallbacks:\n"
        "    - {model: backup, base_url: http://127.0.0.1:8002/v1, context_window: 16384}\n"
    )
    models = build_models(load_settings(cfg).llm)
    default = models.default.model
    assert isinstance(default, FallbackChatModel) and isinstance(
        default.offline, ExtractiveAnswerer
    )
    assert [b.name for b in default.backends] == [
        "big@http://127.0.0.1:8000/v1",
        "backup@http://127.0.0.1:8002/v1",
    ]
    assert models.default.context_window == 16384  # the smallest window of the chain
    small = models.pick("small")
    assert small.name == "small" and small.context_window == 4096
    assert models.pick("code").model.backends[0].name == "coder@http://127.0.0.1:8001/v1"  # type: ignore[attr-defined]
    assert models.pick("large") is models.default  # not configured: the default model


def test_the_default_profile_is_the_offline_answerer_alone() -> None:
    models = build_models(load_settings().llm)
    assert isinstance(models.default.model, ExtractiveAnswerer) and not models.tiers


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("llm:\n  tiers:\n    small: {model: s}\n", "tiers.small: base_url is required"),
        ("llm:\n  fallbacks:\n    - {model: b}\n", "fallbacks.0: base_url is required"),
        ("llm:\n  router: llm\n", "router 'llm' needs a base_url"),
        ("llm:\n  tiers:\n    huge: {model: h, base_url: http://x}\n", "llm.tiers.huge"),
        ("llm:\n  stall_timeout_s: 0\n", "llm.stall_timeout_s"),
    ],
)
def test_bad_llm_settings_name_the_key(tmp_path: Path, yaml: str, message: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml)
    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        load_settings(cfg)

"""deploy/vllm agrees with itself and with app/configs/production.yaml (vLLM cannot run here)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from app.settings import load_settings
from tests.servers import REPO

VLLM = REPO / "deploy" / "vllm"
REQUIRED = (
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--enable-prefix-caching",
    "--max-model-len",
    "--gpu-memory-utilization",
)


def flags(args: list[str]) -> dict[str, str]:
    pairs = (a.split("=", 1) if "=" in a else (a, "") for a in args)
    return {k: v for k, v in pairs}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((VLLM / "compose.yaml").read_text())
    return data["services"]


def k8s_args() -> list[str]:
    docs = list(yaml.safe_load_all((VLLM / "k8s.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@pytest.mark.parametrize("source", ["vllm", "vllm-small", "k8s"])
def test_every_recipe_sets_the_flags_ragent_relies_on(source: str) -> None:
    args = k8s_args() if source == "k8s" else compose()[source]["command"]
    assert set(REQUIRED) <= set(flags(args))


def test_serve_script_sets_the_flags_ragent_relies_on() -> None:
    script = (VLLM / "serve.sh").read_text()
    assert all(flag in script for flag in REQUIRED)


def test_production_points_at_the_served_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_PROFILE", "production")
    for key in ("RAGENT_CONFIG", "RAGENT_LLM_BASE_URL", "RAGENT_LLM_MODEL"):
        monkeypatch.delenv(key, raising=False)
    llm = load_settings().llm
    services = compose()
    large = flags(services["vllm"]["command"])
    small = flags(services["vllm-small"]["command"])
    assert llm.base_url == "http://vllm:8000/v1" and llm.model == large["--served-model-name"]
    assert llm.context_window == int(large["--max-model-len"])
    assert flags(k8s_args())["--served-model-name"] == llm.model
    endpoints = [llm.tiers["small"], *llm.fallbacks]
    assert {(e.model, e.base_url) for e in endpoints} == {
        (small["--served-model-name"], "http://vllm-small:8000/v1")
    }

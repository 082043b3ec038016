"""deploy/compose and deploy/helm give ragent real settings, and name every service it calls.

The files themselves are validated offline by scripts/deploy_check.sh (compose-go, helm,
kubeconform, hadolint); here the settings they set go through ragent's own loader.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from dotenv import dotenv_values

from app.settings import Settings, load_settings
from tests.servers import REPO

COMPOSE = REPO / "deploy" / "compose"
CHART = REPO / "deploy" / "helm" / "ragent"
# Read by the loader itself before the settings model (app/settings.py: _config_path).
LOADER_VARIABLES = {"RAGENT_PROFILE", "RAGENT_CONFIG", "RAGENT_CONFIG_DIR"}
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's merge tags (``!reset``, ``!override``) read as plain values."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(_tag, _plain)


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((COMPOSE / "compose.yaml").read_text(), _ComposeLoader)
    return data


def _interpolated(value: object) -> str:
    """A compose value with each ``${VAR:-default}`` replaced by its default."""
    return DEFAULT.sub(lambda m: m.group(2), str(value))


def _env_example(path: Path) -> dict[str, str]:
    """The file's ``RAGENT_*`` lines, with the commented-out ``# RAGENT_X=...`` examples."""
    text = re.sub(r"(?m)^# (RAGENT_\w+=)", r"\1", path.read_text())
    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if k.startswith("RAGENT_") and v is not None}


def compose_settings(service_name: str = "ragent") -> dict[str, str]:
    """What a service's environment holds: ragent.env.example, then its ``environment``."""
    service = _compose()["services"][service_name]
    env = _env_example(COMPOSE / "ragent.env.example")
    env.update({k: _interpolated(v) for k, v in service["environment"].items()})
    return {k: v for k, v in env.items() if k.startswith("RAGENT_")}


def helm_settings() -> dict[str, str]:
    """The chart's ConfigMap with the default values: ``settings`` plus the worker count."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    env = {k: str(v) for k, v in values["settings"].items()}
    env["RAGENT_SERVER_WORKERS"] = str(values["api"]["workers"])
    return env


def _field_of(name: str) -> str:
    """The setting a ``RAGENT_*`` variable sets, or fail naming it."""
    if name in LOADER_VARIABLES:
        return name
    key = name.removeprefix("RAGENT_").lower()
    if key in Settings.model_fields:
        return key
    section, _, field = key.partition("_")
    assert section in Settings.model_fields, f"{name}: no settings section {section!r}"
    annotation = Settings.model_fields[section].annotation
    assert annotation is not None
    assert field in annotation.model_fields, f"{name}: {section} has no setting {field!r}"
    return f"{section}.{field}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("RAGENT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no developer's .env
    return monkeypatch


@pytest.mark.parametrize("source", ["compose", "helm"])
def test_every_variable_is_a_ragent_setting(source: str) -> None:
    env = compose_settings() if source == "compose" else helm_settings()
    assert env, "no RAGENT_* settings found"
    for name in env:
        _field_of(name)


@pytest.mark.parametrize("source", ["compose", "helm"])
def test_the_settings_load_through_the_real_loader(
    source: str, clean_env: pytest.MonkeyPatch
) -> None:
    env = compose_settings() if source == "compose" else helm_settings()
    for key, value in env.items():
        clean_env.setenv(key, value)
    settings = load_settings()
    assert settings.profile == "production"
    assert settings.server.workers >= 2 and settings.server.redis_url is not None
    assert settings.observability.otlp_endpoint == "http://otel-collector:4318/v1/traces"


def _hosts(settings: Settings) -> dict[str, str]:
    """Each network address of the settings, by the setting that holds it."""
    urls = {
        "llm.base_url": settings.llm.base_url,
        "embed.base_url": settings.embed.base_url,
        "rerank.base_url": settings.rerank.base_url if settings.rerank.provider == "http" else None,
        "retrieval.weaviate_url": settings.retrieval.weaviate_url,
        "retrieval.elasticsearch_url": settings.retrieval.elasticsearch_url,
        "checkpoint.redis_url": settings.checkpoint.redis_url,
        "tools.rate_limit_storage": settings.tools.rate_limit_storage,
        "server.redis_url": settings.server.redis_url,
        "observability.otlp_endpoint": settings.observability.otlp_endpoint,
    }
    for name, endpoint in [*settings.llm.tiers.items(), *enumerate(settings.llm.fallbacks)]:
        urls[f"llm endpoint {name}"] = endpoint.base_url
    return {k: urlparse(v).hostname or "" for k, v in urls.items() if v}


def _serving(profile: str) -> set[str]:
    """Host names the compose network resolves with ``--profile <profile>``."""
    names: set[str] = set()
    for name, service in _compose()["services"].items():
        if service.get("profiles") and profile not in service["profiles"]:
            continue
        names.add(name)
        for network in (service.get("networks") or {}).values():
            names.update((network or {}).get("aliases", []))
    return names


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_compose_defines_every_service_ragent_calls(
    profile: str, clean_env: pytest.MonkeyPatch
) -> None:
    env = compose_settings()
    if profile == "cpu":  # ragent.env.example's advice for the cpu profile, uncommented
        env["RAGENT_RERANK_PROVIDER"] = "none"
    for key, value in env.items():
        clean_env.setenv(key, value)
    hosts = _hosts(load_settings())
    missing = {k: h for k, h in hosts.items() if h not in _serving(profile)}
    assert not missing, f"no compose service answers {missing}"


def test_secrets_stay_with_the_service_that_needs_them() -> None:
    env_files = {
        name: service.get("env_file", []) for name, service in _compose()["services"].items()
    }
    ragent = {"ragent", "ingest-worker"}  # the API and the ingestion workers
    assert all(env_files[name] == ["ragent.env"] for name in ragent)
    assert all("ragent.env" not in files for name, files in env_files.items() if name not in ragent)
    monitoring = dotenv_values(COMPOSE / "monitoring.env.example")
    assert "GF_SECURITY_ADMIN_PASSWORD" in monitoring
    assert not [k for k in monitoring if k.startswith("RAGENT_")]


def test_env_files_are_never_committed() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for example in COMPOSE.glob("*.env.example"):
        assert f"deploy/compose/{example.name.removesuffix('.example')}" in ignored


def test_each_hpa_metric_is_one_the_prometheus_adapter_serves() -> None:
    adapter = yaml.safe_load(
        (REPO / "deploy" / "helm" / "prometheus-adapter-values.yaml").read_text()
    )
    served = {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    wanted = {
        values["api"]["autoscaling"]["inFlightMetric"],
        values["vllm"]["autoscaling"]["queueMetric"],
    }
    assert wanted <= served


def test_the_alerts_job_is_the_job_both_prometheus_setups_scrape() -> None:
    alerts = (CHART / "files" / "alerts.yml").read_text()
    jobs = set(re.findall(r'job="(\w[\w-]*)"', alerts))
    assert jobs == {"ragent"}
    scrape = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    assert jobs <= {c["job_name"] for c in scrape["scrape_configs"]}
    monitor = (CHART / "templates" / "servicemonitor.yaml").read_text()
    assert jobs <= set(re.findall(r"targetLabel: job, replacement: (\S+)\}", monitor))


@pytest.mark.parametrize("source", ["compose", "helm"])
def test_ingestion_workers_run_the_queue_the_api_fills(
    source: str, clean_env: pytest.MonkeyPatch
) -> None:
    from typer.main import get_command

    from app.cli.main import cli

    if source == "compose":
        services = _compose()["services"]
        command = services["ingest-worker"]["command"]
        profile = services["ingest-worker"]["environment"]["RAGENT_PROFILE"]
        assert profile == services["ragent"]["environment"]["RAGENT_PROFILE"]
    else:
        workers = yaml.safe_load((CHART / "values.yaml").read_text())["ingestWorker"]
        assert workers["enabled"]
        command = workers["command"]
    assert command[:2] == ["ragent", "worker"]
    assert "worker" in get_command(cli).commands  # type: ignore[attr-defined]
    env = compose_settings() if source == "compose" else helm_settings()
    for key, value in env.items():
        clean_env.setenv(key, value)
    assert load_settings().server.ingest_queue  # the API queues; nothing else runs jobs

"""The deployment files against a real ``ragent serve``: the probes they send answer, and
every metric the dashboard and the alert rules query is one the server exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.servers import BIN, REPO, free_port, service

pytestmark = pytest.mark.e2e

CHART = REPO / "deploy" / "helm" / "ragent"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
METRIC = re.compile(r"\bragent_[a-z0-9_]+")
# The samples each metric type exposes, by suffix (Prometheus text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("deploy")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(BIN / "ragent"), "serve", "--port", str(port)]
    with service(
        args, health_url=f"{url}/healthz", env={"RAGENT_DATA_DIR": str(root / "data")}, cwd=root
    ):
        yield url


def exported(text: str) -> set[str]:
    """Every sample name the exposition can carry, from its ``# TYPE`` lines."""
    names: set[str] = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        base = family.removesuffix("_total") if kind == "counter" else family
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def queried() -> dict[str, set[str]]:
    """The ragent metrics each monitoring file's queries name."""
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    panels = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load((CHART / "files" / "alerts.yml").read_text())
    alerts = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    adapter = (REPO / "deploy" / "helm" / "prometheus-adapter-values.yaml").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return {
        "dashboard": {m for e in panels for m in METRIC.findall(e)},
        "alerts": {m for e in alerts for m in METRIC.findall(e)},
        "adapter": set(METRIC.findall(adapter)),
        "hpa": {values["api"]["autoscaling"]["inFlightMetric"]},
    }


def test_monitoring_queries_only_metrics_the_server_exports(server: str) -> None:
    text = httpx.get(f"{server}/metrics", timeout=30).text
    names = exported(text)
    assert "ragent_http_requests_in_flight" in names, text[:2000]
    for source, metrics in queried().items():
        assert metrics, f"{source}: no ragent metric found"
        unknown = metrics - names
        assert not unknown, f"{source} queries metrics the server does not export: {unknown}"


def probe_paths() -> dict[str, str]:
    """The HTTP paths each deployment file probes ragent on."""
    template = (CHART / "templates" / "api-deployment.yaml").read_text()
    found = {
        f"helm {kind}": path
        for kind, path in re.findall(r"(\w+Probe):\s*\n\s*httpGet: \{path: (\S+),", template)
    }
    compose = yaml.safe_load(COMPOSE.read_text().replace("!reset", ""))
    check = " ".join(compose["services"]["ragent"]["healthcheck"]["test"])
    found["compose healthcheck"] = re.findall(r"http://127\.0\.0\.1:8000(/\w+)", check)[0]
    dockerfile = (REPO / "Dockerfile").read_text()
    found["Dockerfile HEALTHCHECK"] = re.findall(r"http://127\.0\.0\.1:8000(/\w+)", dockerfile)[0]
    return found


def test_every_probe_answers_on_a_real_server(server: str) -> None:
    paths = probe_paths()
    assert {"helm startupProbe", "helm livenessProbe", "helm readinessProbe"} <= set(paths)
    assert paths["helm readinessProbe"] == "/readyz"  # readiness checks the dependencies
    for source, path in paths.items():
        response = httpx.get(f"{server}{path}", timeout=30)
        assert response.status_code == 200, f"{source} probes {path}: {response.status_code}"


def test_the_chart_scrapes_the_metrics_route(server: str) -> None:
    template = (CHART / "templates" / "servicemonitor.yaml").read_text()
    paths = set(re.findall(r"path: (\S+)", template))
    assert paths == {"/metrics"}
    response = httpx.get(f"{server}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_exported_names_follow_the_text_format() -> None:
    text = "# TYPE a_total counter\n# TYPE b histogram\n# TYPE c gauge\n"
    assert exported(text) == {
        "a_total",
        "a_created",
        "b_bucket",
        "b_sum",
        "b_count",
        "b_created",
        "c",
    }

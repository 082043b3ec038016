"""/metrics of one process carries prometheus_client's process, platform and GC metrics."""

from __future__ import annotations

import gzip

from prometheus_client.parser import text_string_to_metric_families

from app.server.api_metrics import Metrics


def test_process_platform_and_gc_metrics_are_served() -> None:
    first, second = Metrics(), Metrics()  # one per app: the shared collectors register twice
    names = {f.name for f in text_string_to_metric_families(second.render().decode())}
    assert {"process_cpu_seconds", "python_info", "python_gc_objects_collected"} <= names
    assert "ragent_http_requests" in names and first.registry is not second.registry


def test_a_scrape_is_openmetrics_when_asked_and_gzipped_when_accepted() -> None:
    metrics = Metrics()
    metrics.requests.labels("/v1/threads", "GET", "200").inc()
    text, headers = metrics.scrape()
    assert list(headers) == ["Content-Type"] and headers["Content-Type"].startswith("text/plain")
    assert b"ragent_http_requests_total{" in text and b"ragent_safety_blocks_total{" in text
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    om, headers = metrics.scrape(accept)
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    # The API's and the engines' metrics make one exposition: one # EOF, at its end.
    assert om.count(b"# EOF") == 1 and om.endswith(b"# EOF\n")
    zipped, headers = metrics.scrape("", "gzip, deflate")
    assert headers["Content-Encoding"] == "gzip"
    assert len(zipped) < len(text) / 4
    # The same exposition, zipped: the same metrics, one HELP line each (values such as the
    # process's memory move between two scrapes).
    assert _helps(gzip.decompress(zipped)) == _helps(text)


def _helps(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.startswith(b"# HELP")]

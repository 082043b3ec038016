"""/metrics of one process carries prometheus_client's process, platform and GC metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.server.api_metrics import Metrics


def test_process_platform_and_gc_metrics_are_served() -> None:
    first, second = Metrics(), Metrics()  # one per app: the shared collectors register twice
    names = {f.name for f in text_string_to_metric_families(second.render().decode())}
    assert {"process_cpu_seconds", "python_info", "python_gc_objects_collected"} <= names
    assert "ragent_http_requests" in names and first.registry is not second.registry

"""Fixtures shared by the observability tests: spans in memory, log lines in a buffer."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config.observability import ObservabilitySettings
from app.observability.logs import setup_logging
from app.observability.tracing import setup_tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Record every span in memory for the test, then switch tracing off again."""
    exporter = InMemorySpanExporter()
    setup_tracing(ObservabilitySettings(), exporter=exporter)
    yield exporter
    setup_tracing(ObservabilitySettings())


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """JSON log lines at DEBUG into a buffer; the root logger is restored afterwards."""
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = setup_logging(ObservabilitySettings(log_level="DEBUG"), stream=out)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)

"""Tracing (OpenTelemetry), Prometheus metrics and JSON logs.

Import the submodules directly: :mod:`.tracing` for spans, :mod:`.metrics` for the
process-wide metrics, :mod:`.logs` for logging set-up, :mod:`.graph` for the node
wrapper, and :func:`.setup.configure` to set everything up from settings.
"""

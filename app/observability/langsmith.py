"""LangSmith's client for the process: runs redacted by default, full content on request.

With ``LANGSMITH_TRACING=true`` (or ``LANGCHAIN_TRACING_V2=true``) and an API key,
LangChain and LangGraph send a run for every graph node, model call and tool call, with
the question, the retrieved text, tool arguments and the answer as its inputs and outputs.
:func:`setup_langsmith` makes the process's LangSmith client one that passes every run
through :func:`app.observability.run_allowlist.redact_run` first
(``observability.langsmith_content: redacted``, the default);
``langsmith_content: full`` sends what the LangSmith SDK sends by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from langsmith import Client
from langsmith.client import ID_TYPE, RUN_TYPE_T

from app.config.observability import LangSmithContent, ObservabilitySettings
from app.observability.run_allowlist import redact_run

__all__ = ["RedactingClient", "langsmith_requested", "make_client", "setup_langsmith"]

_TRACING: Final = ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2")
_ENV: Final = (
    *_TRACING,
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_ENDPOINT",
    "LANGCHAIN_ENDPOINT",
)
"""The variables that turn LangSmith tracing on or say where runs go."""
_INSTALLED: list[tuple[tuple[str, ...], Client]] = []


class RedactingClient(Client):
    """A LangSmith client that sends every run through :func:`redact_run`."""

    def create_run(  # noqa: D102 - Client.create_run, redacted
        self, name: str, inputs: dict[str, Any], run_type: RUN_TYPE_T, **kwargs: Any
    ) -> None:
        fields = redact_run({**kwargs, "name": name, "inputs": inputs, "run_type": run_type})
        super().create_run(
            fields.pop("name"), fields.pop("inputs"), fields.pop("run_type"), **fields
        )

    def update_run(self, run_id: ID_TYPE, **kwargs: Any) -> None:  # noqa: D102 - redacted
        super().update_run(run_id, **redact_run(kwargs))


def make_client(content: LangSmithContent = "redacted", **options: Any) -> Client:
    """A LangSmith client that redacts runs, or the SDK's own client for ``full`` content.

    Args:
        content: ``redacted`` (the default) or ``full``.
        **options: Passed to ``langsmith.Client`` (``api_url``, ``api_key``, ...).
    """
    return Client(**options) if content == "full" else RedactingClient(**options)


def langsmith_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether LangSmith may receive runs: tracing turned on, or a key or endpoint set."""
    env = os.environ if env is None else env
    if any(env.get(name, "").strip().lower() == "true" for name in _TRACING):
        return True
    return any(env.get(name, "").strip() for name in _ENV if name not in _TRACING)


def setup_langsmith(
    settings: ObservabilitySettings, env: Mapping[str, str] | None = None
) -> Client | None:
    """Make the process's LangSmith client, the one LangChain's tracer uses, redact runs.

    LangChain's tracer takes the client of ``langsmith.run_trees`` unless a run names one,
    so this sets that client (``langsmith.run_trees.configure``). Nothing happens when
    LangSmith is not configured (:func:`langsmith_requested`).

    Args:
        settings: The ``observability`` section (``langsmith_content``).
        env: The environment (``os.environ`` when None).

    Returns:
        The installed client, or None when LangSmith is not configured.
    """
    env = os.environ if env is None else env
    if not langsmith_requested(env):
        return None
    from langsmith.run_trees import configure

    # A server worker sets up twice (its process, then the app's lifespan): one client.
    key = (settings.langsmith_content, *(env.get(name, "") for name in _ENV))
    if not _INSTALLED or _INSTALLED[0][0] != key:
        _INSTALLED[:] = [(key, make_client(settings.langsmith_content))]
    client = _INSTALLED[0][1]
    configure(client=client)
    return client

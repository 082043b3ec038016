"""What a LangSmith run keeps: its tree, timings and the spans' allowlisted attributes.

:func:`redact_run` rebuilds the fields of a run, as ``langsmith.Client.create_run`` and
``update_run`` get them, from allowlisted parts only. A run keeps its place in the tree
(ids, parent, dotted order, project), its name, type, start and end times, the names of
its events and LangGraph's step tags. Its outputs become what the node's OpenTelemetry
span carries (:func:`app.observability.graph.describe`: route, tier, hits, the model that
answered, token counts, tool calls, outcome), its inputs are empty, an error is its
exception type, metadata is allowlisted and the thread id is a digest. Anything else,
and any field this module does not know, is dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from app.observability.metrics import model_label
from app.observability.tracing import ATTRIBUTES
from app.safety import redact

__all__ = ["redact_run"]

_PASSED: Final = frozenset(
    {
        # The run's place in its tree and project, and its timing.
        "id",
        "run_id",
        "trace_id",
        "dotted_order",
        "parent_run_id",
        "start_time",
        "end_time",
        "session_id",
        "session_name",
        "project_name",
        "address",
        "revision_id",
        "reference_example_id",
        "name",
        "run_type",
        # Where the SDK sends it (its own settings, never run content).
        "api_key",
        "api_url",
        "service_key",
        "tenant_id",
        "authorization",
        "cookie",
        "_replica_auths",
    }
)
"""Run fields sent as they are. ``inputs``, ``outputs``, ``error``, ``events``, ``extra``,
``tags`` and ``serialized`` are rebuilt from allowlisted parts; any other field is dropped."""

_METADATA: Final = frozenset(
    {
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
        "checkpoint_ns",
        "ls_integration",
        "ls_provider",
        "ls_model_name",
        "ls_model_type",
        "ls_temperature",
        "ls_max_tokens",
        "ls_method",
        "ls_run_depth",
        "revision_id",
        "risk",
    }
)
"""Metadata keys kept (LangGraph's step bookkeeping and LangChain's model description),
when their values are numbers or short identifiers; ``thread_id`` is kept as a digest."""

_TAG: Final = re.compile(r"(?:seq|graph):step:\d+|langsmith:[\w-]+")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NAMESPACE: Final = re.compile(rf"[A-Za-z_]\w*:{_UUID}(?:\|[A-Za-z_]\w*:{_UUID})*")
_IDENT: Final = re.compile(r"[\w.:/@+-]{1,200}")
_ERROR_TYPE: Final = re.compile(r"([A-Za-z_][\w.]*)[(:]")
_OUTCOMES: Final = {"success": "ok", "error": "error"}


def _identifier(value: object) -> bool:
    """A short name or id (no spaces) in which the PII detector finds nothing."""
    return isinstance(value, str) and _plain(value)


@lru_cache(maxsize=4096)
def _plain(value: str) -> bool:
    # Cached: node, trigger, event and model names repeat in every run of every turn.
    # Checkpoint namespaces (``node:<uuid>|...``) are new every step and hold no PII.
    if _NAMESPACE.fullmatch(value):
        return True
    return bool(_IDENT.fullmatch(value)) and not redact(value)[1]


def _scalar(value: object) -> bool:
    if isinstance(value, bool | int | float) or value is None:
        return True
    return _identifier(value)


def _kept(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's values that a span could carry (allowlisted names, scalar values)."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key not in ATTRIBUTES or value is None:
            continue
        if key in {"served_by", "model"} and isinstance(value, str):
            value = model_label(value)
        if _scalar(value):
            out[key] = value
    return out


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` of a dict, ``obj.key`` of an object (runs hold either)."""
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _message(generation: Any) -> Any:
    message = _get(generation, "message")
    if isinstance(message, Mapping) and message.get("lc") is not None:
        return message.get("kwargs") or {}  # serialised by LangChain (a constructor)
    return message


def _llm(outputs: Mapping[str, Any]) -> dict[str, Any]:
    tokens_in = tokens_out = calls = 0
    served: Any = None
    for batch in outputs.get("generations") or []:
        for generation in batch if isinstance(batch, list) else [batch]:
            message = _message(generation)
            usage = _get(message, "usage_metadata") or {}
            tokens_in += int(usage.get("input_tokens") or 0)
            tokens_out += int(usage.get("output_tokens") or 0)
            calls += len(_get(message, "tool_calls") or [])
            meta = _get(message, "response_metadata") or {}
            served = served or meta.get("served_by") or meta.get("model_name")
    return {
        "served_by": served,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tool_calls": calls,
    }


def _tool(outputs: Mapping[str, Any]) -> dict[str, Any]:
    status = _get(outputs.get("output"), "status")
    return {"outcome": _OUTCOMES.get(status) if isinstance(status, str) else None}


def _chain(name: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    # Imported here: it loads the tool registry, which commands without a graph never need.
    from app.observability.graph import describe

    described = describe(name, outputs)
    if described:
        return dict(described)
    sources = outputs.get("sources", outputs.get("documents"))
    return {
        "route": outputs.get("route"),
        "tier": outputs.get("tier"),
        "hits": len(sources) if isinstance(sources, list) else None,
    }


def _outputs(name: str, run_type: str | None, outputs: Any) -> dict[str, Any]:
    if not isinstance(outputs, Mapping):
        return {}
    try:
        if run_type == "llm":
            return _kept(_llm(outputs))
        if run_type == "tool":
            return _kept(_tool(outputs))
        return _kept(_chain(name, outputs))
    except (AttributeError, KeyError, TypeError, ValueError):  # a shape we don't know: nothing
        return {}


def _error(error: Any) -> str | None:
    """The exception's type: LangChain's error strings start with ``repr(exception)``."""
    if not isinstance(error, str):
        return None
    match = _ERROR_TYPE.match(error.strip())
    return match.group(1) if match and _identifier(match.group(1)) else "Error"


def _metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "thread_id" and isinstance(value, str):
            out[key] = "thread:" + hashlib.blake2b(value.encode(), digest_size=8).hexdigest()
        elif key in _METADATA and (
            _scalar(value) or (isinstance(value, list) and all(map(_identifier, value)))
        ):
            out[key] = value
    return out


def redact_run(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a run (create or update fields) with only allowlisted parts of its content.

    Args:
        fields: The keyword arguments of ``Client.create_run`` or ``Client.update_run``.

    Returns:
        The fields of :data:`_PASSED` as they are; ``inputs`` empty; ``outputs`` as the
        span attributes the run supports; ``error`` as an exception type; ``events`` as
        names and times; ``extra`` as allowlisted metadata; LangGraph's step tags; the
        class path of ``serialized``. Other fields are dropped.
    """
    out = {key: value for key, value in fields.items() if key in _PASSED}
    name = fields.get("name")
    run_type = fields.get("run_type")
    if "inputs" in fields:
        out["inputs"] = {} if fields["inputs"] is not None else None
    if fields.get("outputs") is not None:
        out["outputs"] = _outputs(
            name if isinstance(name, str) else "", run_type, fields["outputs"]
        )
    if fields.get("error") is not None:
        out["error"] = _error(fields["error"])
    if isinstance(fields.get("events"), list):
        out["events"] = [
            {"name": e["name"], "time": e.get("time")}
            for e in fields["events"]
            if isinstance(e, Mapping) and _identifier(e.get("name"))
        ]
    if isinstance(fields.get("extra"), Mapping):
        out["extra"] = {"metadata": _metadata(fields["extra"].get("metadata"))}
    if isinstance(fields.get("tags"), list):
        out["tags"] = [t for t in fields["tags"] if isinstance(t, str) and _TAG.fullmatch(t)]
    serialized = fields.get("serialized")
    if isinstance(serialized, Mapping) and isinstance(serialized.get("id"), list):
        out["serialized"] = {"id": [p for p in serialized["id"] if _identifier(p)]}
    return out

"""A client's JSON Schema: bounded, checked, and applied to a reply within limits.

A schema is at most :data:`MAX_SCHEMA_BYTES` of compact JSON and :data:`MAX_SCHEMA_DEPTH`
levels deep, valid for draft 2020-12, and its ``$ref``s point within it (nothing is
fetched). Replies are validated with ``jsonschema``; a ``pattern`` (or a
``patternProperties`` key) is matched by the ``regex`` module with a time limit, so a
pattern that backtracks without end fails the check instead of holding the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import unquote

import regex
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError, best_match

__all__ = ["MAX_SCHEMA_BYTES", "MAX_SCHEMA_DEPTH", "schema_problem", "validation_problem"]

MAX_SCHEMA_BYTES: Final = 32_000
"""Longest ``json_schema.schema``, as compact JSON."""
MAX_SCHEMA_DEPTH: Final = 24
"""Deepest nesting of objects and arrays in a schema document."""
_PATTERN_TIMEOUT_S: Final = 0.2


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


def _timed_search(pattern: str, text: str) -> bool:
    try:
        return regex.search(pattern, text, timeout=_PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        raise ValidationError(f"the pattern {pattern!r} took too long to match") from None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _timed_search(pattern, instance):
        yield ValidationError(f"the string does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _timed_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_Validator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in its stubs
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$ref", "$dynamicRef"} and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _anchors(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$anchor", "$dynamicAnchor"} and isinstance(value, str):
                yield value
            else:
                yield from _anchors(value)
    elif isinstance(node, list):
        for item in node:
            yield from _anchors(item)


def _points_into(schema: Mapping[str, Any], ref: str) -> bool:
    """Whether a ``#...`` reference names a place in ``schema`` (a pointer or an anchor)."""
    fragment = unquote(ref[1:])
    if not fragment.startswith("/"):
        return fragment == "" or fragment in set(_anchors(schema))
    node: Any = schema
    for token in fragment[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _ref_problem(schema: Mapping[str, Any]) -> str | None:
    for ref in _refs(schema):
        if not ref.startswith("#"):
            return f"$ref {ref[:100]!r}: only references within the schema ('#/...') are followed"
        if not _points_into(schema, ref):
            return f"$ref {ref[:100]!r} points nowhere in the schema"
    return None


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Say why a client's JSON Schema cannot be used, or return None when it can.

    It must be at most :data:`MAX_SCHEMA_BYTES` long and :data:`MAX_SCHEMA_DEPTH` deep,
    a valid JSON Schema (draft 2020-12) whose patterns compile, and its ``$ref``s must
    point within it: nothing is fetched.
    """
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > MAX_SCHEMA_BYTES:
        return f"the schema is {size} bytes; at most {MAX_SCHEMA_BYTES} are accepted"
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        return f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(map(str, exc.path)) or "the schema"
        return f"not a valid JSON Schema at {where}: {exc.message[:200]}"
    except RecursionError:
        return "the schema nests too deep"
    return _ref_problem(schema)


def validation_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """Say briefly where and why ``value`` breaks ``schema``; None when it conforms."""
    try:
        error = best_match(_Validator(schema).iter_errors(value))
    except (ValidationError, RecursionError) as exc:
        return str(getattr(exc, "message", "the reply nests too deep"))
    except Exception as exc:  # noqa: BLE001 - e.g. a reference that resolves nowhere
        return f"the schema cannot be applied ({type(exc).__name__})"
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "the reply"
    return f"{where}: {error.message[:300]}"

"""A client's ``response_format``: checked, asked of the model, and its reply validated.

OpenAI's three formats: ``text`` (nothing to do), ``json_object`` (the reply is one
JSON object) and ``json_schema`` (the reply validates against the client's JSON
Schema). The model gets the format as ``response_format`` (vLLM and OpenAI enforce it)
and as an instruction in its system prompt (for servers that do not). A reply that does
not conform is shown to the model once with the validation error; the answer is what
that repair returns, conforming or not. The caller checks the final answer with
:func:`conforming`.

The offline answerer cannot write JSON of its own: it wraps its answer in a
``json_object`` as ``{"answer": ...}``, and fills a schema whose only required field is
a plain string (:func:`offline_fill`); :func:`offline_problem` says what it cannot do.

Schemas are checked and bounded, and applied with a time limit per pattern, by
:mod:`app.llm.json_schemas`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from app.llm.deadline import deadline_passed
from app.llm.json_schemas import validation_problem
from app.llm.usage import model_role

__all__ = [
    "ReplyError",
    "conforming",
    "instruction",
    "is_json",
    "offline_fill",
    "offline_problem",
    "repaired",
]

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ReplyError(ValueError):
    """A reply that does not conform to the response format."""


def is_json(response_format: Mapping[str, Any] | None) -> bool:
    """Whether a response format asks for JSON (``json_object`` or ``json_schema``)."""
    return isinstance(response_format, Mapping) and response_format.get("type") != "text"


def _schema(response_format: Mapping[str, Any]) -> dict[str, Any] | None:
    if response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema", {}).get("schema")
    return schema if isinstance(schema, dict) else None


def conforming(text: str, response_format: Mapping[str, Any]) -> str:
    """Return a reply's JSON (a code fence around it removed) when it conforms.

    Args:
        text: The model's reply.
        response_format: The client's ``json_object`` or ``json_schema`` format.

    Raises:
        ReplyError: The reply is not one JSON object, or does not match the schema;
            the message says where, briefly.
    """
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ReplyError(f"the reply is not JSON ({getattr(exc, 'msg', 'too deep')})") from None
    schema = _schema(response_format)
    if schema is None:
        if not isinstance(value, dict):
            raise ReplyError("the reply is JSON but not an object")
        return body
    problem = validation_problem(schema, value)
    if problem is not None:
        raise ReplyError(problem)
    return body


def instruction(response_format: Mapping[str, Any]) -> str:
    """The system prompt's paragraph that asks for the format (empty for ``text``)."""
    if not is_json(response_format):
        return ""
    schema = _schema(response_format)
    text = (
        "\n\nReply with exactly one JSON object and nothing else: no prose and no code "
        "fence. Source labels such as [S1] go inside JSON strings."
    )
    if schema is not None:
        text += f" It must validate against this JSON schema:\n{json.dumps(schema)}"
    return text


async def repaired(
    model: BaseChatModel,
    prompt: Sequence[BaseMessage],
    reply: AIMessage,
    response_format: Mapping[str, Any],
    **kwargs: Any,
) -> AIMessage:
    """Return ``reply`` if it conforms, else the model's one repair of it.

    The repair call sees the prompt, the reply and the validation error; it is counted
    in the turn's usage as ``repair``. Past the turn's model deadline no repair is
    asked for. The caller checks the result again.

    Args:
        model: The model that replied (without tools: the repair only rewrites).
        prompt: The messages that produced ``reply``.
        reply: The model's reply.
        response_format: The client's JSON format.
        **kwargs: The call's decoding parameters (``response_format`` is added).
    """
    try:
        conforming(reply.text, response_format)
        return reply
    except ReplyError as exc:
        problem = str(exc)
    if deadline_passed():
        return reply
    again = HumanMessage(
        f"Your reply does not conform to the required format ({problem}). Reply again "
        f"with only the corrected JSON object.{instruction(response_format)}"
    )
    with model_role("repair"):
        fixed = await model.ainvoke(
            [*prompt, AIMessage(content=reply.text), again],
            **{**kwargs, "response_format": dict(response_format)},
        )
    return AIMessage(
        content=fixed.text,
        id=reply.id,
        response_metadata=fixed.response_metadata,
        usage_metadata=fixed.usage_metadata,
    )


def _plain_string(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "string"
        and set(schema)
        <= {
            "type",
            "title",
            "description",
        }
    )


def _text_field(schema: Mapping[str, Any]) -> str | None:
    """The one property a text answer fills, when the schema has exactly one to fill."""
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return None
    required = schema.get("required", [])
    plain = [key for key, value in properties.items() if _plain_string(value)]
    candidates = list(required) if required else plain
    if len(candidates) != 1 or not _plain_string(properties.get(candidates[0])):
        return None
    return str(candidates[0])


def offline_problem(response_format: Mapping[str, Any]) -> str | None:
    """Say why the offline answerer cannot answer in this format, or None when it can."""
    schema = _schema(response_format)
    if schema is None or _text_field(schema) is not None:
        return None
    return (
        "the offline model can fill only a schema whose one required field is a plain "
        "string (or json_object); configure llm.base_url for other schemas"
    )


def offline_fill(text: str, response_format: Mapping[str, Any] | None) -> str:
    """The offline answerer's reply in the format: its answer as JSON where it can."""
    if response_format is None or not is_json(response_format):
        return text
    schema = _schema(response_format)
    if schema is None:
        return json.dumps({"answer": text})
    field = _text_field(schema)
    return text if field is None else json.dumps({field: text})

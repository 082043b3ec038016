"""Structured output: JSON validated against a pydantic schema, with one repair retry.

The model is asked for JSON in the prompt and, on OpenAI-compatible servers, with
``response_format`` (``json_schema``, which vLLM enforces by guided decoding). The reply
is validated with pydantic; when it does not validate, the model sees its reply and the
validation error once and answers again. A second invalid reply raises. Inside a turn
whose model deadline has passed (:mod:`app.llm.deadline`), no call is made and no repair
is asked for: only the offline answerer could reply, and it does not write JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from app.llm.deadline import deadline_passed

__all__ = ["StructuredOutputError", "ainvoke_structured", "parse_json_reply"]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class StructuredOutputError(ValueError):
    """The model's reply did not validate against the schema, even after a repair."""


def parse_json_reply(text: str, schema: type[T]) -> T:
    """Validate a reply that should be one JSON object, tolerating a code fence around it.

    Raises:
        ValidationError: The text is not JSON, or does not match the schema.
    """
    fenced = _FENCE.match(text)
    return schema.model_validate_json(fenced.group(1) if fenced else text.strip())


def _short(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the reply"
    return f"{where}: {first['msg']} ({error.error_count()} error(s))"


async def ainvoke_structured(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    schema: type[T],
    **kwargs: Any,
) -> T:
    """Call ``model`` and return its reply validated as ``schema``.

    Args:
        model: Any chat model; OpenAI-compatible ones also get ``response_format``.
        messages: The conversation that asks for the structured answer.
        schema: The pydantic model the reply must validate against.
        **kwargs: Passed to the model call (decoding parameters).

    Returns:
        The validated object.

    Raises:
        StructuredOutputError: Both the reply and the repaired reply were invalid, or the
            turn's model deadline passed before a valid reply.
    """
    if deadline_passed():
        raise StructuredOutputError(f"{schema.__name__}: the turn's model deadline has passed")
    json_schema = schema.model_json_schema()
    instruction = SystemMessage(
        "Reply with exactly one JSON object and nothing else. It must validate against "
        f"this JSON schema:\n{json.dumps(json_schema, separators=(',', ':'))}"
    )
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": json_schema},
    }
    prompt = [instruction, *messages]
    reply = await model.ainvoke(prompt, response_format=response_format, **kwargs)
    try:
        return parse_json_reply(reply.text, schema)
    except ValidationError as first:
        if deadline_passed():
            raise StructuredOutputError(
                f"{schema.__name__}: the reply is invalid ({_short(first)}) and the turn's "
                "model deadline has passed"
            ) from None
        repair = HumanMessage(
            f"Your reply was not valid ({_short(first)}). Reply again with only the "
            "corrected JSON object."
        )
        retry = [*prompt, reply, repair]
        again = await model.ainvoke(retry, response_format=response_format, **kwargs)
        try:
            return parse_json_reply(again.text, schema)
        except ValidationError as second:
            raise StructuredOutputError(
                f"{schema.__name__}: the reply is invalid after one repair: {_short(second)}"
            ) from None

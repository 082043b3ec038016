"""The output guard over the LangGraph API's payloads: stream events, states, results.

Graph chunks and checkpoints hold the turn's replies as the model wrote them: those of
a step before ``guard_output`` (``updates``, ``values``, ``debug``, ``tasks``,
``checkpoints``, a thread's history) were never checked. :func:`guarded` checks every
message in a payload as ``/v1`` checks its answer: a reply has its personal data and
secrets redacted, or becomes :data:`app.prompts.LEAKED_PROMPT` when it repeats the
system prompt (:mod:`app.safety.reply` does the same to ``messages`` tokens as they
stream). Tool-call arguments, a user's and a tool's messages, the conversation summary
and memories have their personal data and secrets redacted. Checking a checked reply
changes nothing, so a streamed and a waited-for result carry the same redactions.
"""

from __future__ import annotations

from typing import Any

from app import prompts
from app.safety import redact
from app.safety.leak import leak_check

__all__ = ["guarded"]

_REPLIES = frozenset({"ai", "AIMessageChunk"})
"""Message types the model writes: their text is checked for a prompt leak too."""
_OTHERS = frozenset({"human", "HumanMessageChunk", "tool", "ToolMessageChunk"})
_ARGS = ("tool_calls", "invalid_tool_calls", "tool_call_chunks")
_STATE_TEXTS = ("summary", "memories")
"""State fields the model writes from the conversation."""


def _redacted(value: Any) -> Any:
    """``value`` (plain JSON) with personal data and secrets redacted from every string."""
    if isinstance(value, str):
        return redact(value)[0]
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def _reply(text: str, prompt: str) -> str:
    text = redact(text)[0]
    return prompts.LEAKED_PROMPT if leak_check(prompt).leaks(text) else text


def _content(content: Any, prompt: str | None) -> Any:
    """A message's content (a string or content blocks), checked."""
    if isinstance(content, str):
        return _reply(content, prompt) if prompt is not None else redact(content)[0]
    if isinstance(content, list):
        return [
            {**b, "text": _content(b["text"], prompt)}
            if isinstance(b, dict) and isinstance(b.get("text"), str)
            else _content(b, prompt)
            for b in content
        ]
    return content


def _message(message: dict[str, Any], prompt: str) -> dict[str, Any]:
    reply = message["type"] in _REPLIES
    out = {k: guarded(v, prompt) for k, v in message.items()}
    out["content"] = _content(message.get("content"), prompt if reply else None)
    if reply:
        for key in _ARGS:
            if isinstance(message.get(key), list):
                out[key] = [
                    {**c, "args": _redacted(c["args"])}
                    if isinstance(c, dict) and "args" in c
                    else c
                    for c in message[key]
                ]
        if isinstance(message.get("additional_kwargs"), dict):
            # The provider's own copy of tool calls (``function.arguments``) and reasoning.
            out["additional_kwargs"] = _redacted(message["additional_kwargs"])
    return out


def guarded(value: Any, prompt: str = prompts.SYSTEM_PROMPT) -> Any:
    """Return a payload of the API (plain JSON) as the output guard lets it out.

    Args:
        value: Plain JSON (see :func:`~app.server.platform.encoding.jsonable`): an event's
            data, a state's values, a snapshot; messages anywhere in it are found.
        prompt: The run's system prompt, which no reply may repeat (the default prompt
            where the run's is not known, as for a thread's history).
    """
    if isinstance(value, list):
        return [guarded(v, prompt) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    if isinstance(kind, str) and (kind in _REPLIES or kind in _OTHERS) and "content" in value:
        return _message(value, prompt)
    out = {k: guarded(v, prompt) for k, v in value.items()}
    for key in _STATE_TEXTS:
        if key in value and isinstance(value[key], str | list):
            out[key] = _redacted(value[key])
    return out

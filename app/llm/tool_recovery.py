"""Tool calls that open models write as text, recovered into proper tool calls.

Small open models served by llama.cpp or vLLM often pick the right tool and arguments
but write the call into the message text instead of the server's ``tool_calls`` field,
because the server's tool-call parser does not match the format the model learnt. The
formats seen in the wild, all read here:

- bare JSON, the whole reply: ``{"name": "calculator", "arguments": {...}}`` (also
  ``"parameters"`` or ``"args"`` for the arguments, a list of such objects, or one after
  another, where a call repeated word for word counts once);
- the same inside a fenced block (```` ```json ... ``` ````), alone or after some prose
  ("I will use the calculator:"), where the prose stays the reply's text;
- Hermes / Qwen tags: ``<tool_call>{...}</tool_call>``, one or more, after some text;
- Llama 3: ``<|python_tag|>{"name": ..., "parameters": ...}``;
- Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": ...}]`` and the newer
  ``[TOOL_CALLS]name[ARGS]{...}``.

A recovered call must name a tool bound for that reply, with an object of arguments;
otherwise nothing is recovered and the reply stays text. Its arguments are then checked
like those of any call: the tool registry validates them against the tool's JSON schema
(no undeclared argument) before anything runs, and answers a call that fails with the
validation error, so the model can correct it, and the call never reaches the user as
text. Schema keywords a small model copies into its arguments (``"type": "object"``,
``"required": [...]``) are dropped first, unless the tool declares such an argument.

While a reply streams, :class:`StreamGuard` holds back text that may be the start of such
a call (a reply or a line that opens with ``{``, a fence, or one of the tags), so a call
never reaches the user as text; ordinary text streams as it comes.

Written here because no library reads these formats outside a model server: llama.cpp
and vLLM each parse one format per model family, inside the server.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import ToolCall

__all__ = ["RECOVERED_TOOL_CALLS", "Recovered", "StreamGuard", "recover_tool_calls"]

RECOVERED_TOOL_CALLS: Final = "recovered_tool_calls"
"""The ``response_metadata`` key of a reply whose calls were read from its text: the format."""

_HERMES: Final = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE: Final = re.compile(r"^```(?:json|tool_call|tool_code)?\s*\n?(.*?)\n?```$", re.DOTALL)
# A JSON block after some prose: only blocks that say they are JSON (or a tool call).
_JSON_FENCE: Final = re.compile(r"```(?:json|tool_call|tool_code)[ \t]*\n(.*?)\n?```", re.DOTALL)
_PYTHON_TAG: Final = "<|python_tag|>"
_MISTRAL: Final = "[TOOL_CALLS]"
_MISTRAL_ARGS: Final = re.compile(r"\s*([A-Za-z0-9_.-]{1,64})\[ARGS\](.*)", re.DOTALL)


@dataclass(frozen=True)
class Recovered:
    """Tool calls read out of a reply's text.

    Attributes:
        calls: The calls, each validated against its tool's schema.
        text: What the reply says besides the calls (text before a tag), stripped.
        format: Which format they were written in (for metrics and the audit log).
    """

    calls: list[ToolCall]
    text: str
    format: str


def _name_of(tool: dict[str, Any]) -> str:
    function = tool.get("function", tool)
    return str(function.get("name", ""))


def _schema_of(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    schema = function.get("parameters")
    return schema if isinstance(schema, dict) else {"type": "object"}


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _as_calls(payload: Any) -> list[tuple[str, Any]] | None:
    """Read ``(name, arguments)`` pairs from parsed JSON; None when it is not calls."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        return None
    found: list[tuple[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        wrapped = isinstance(item.get("function"), dict)
        if wrapped:  # OpenAI's own shape, written as text
            item = item["function"]
        name = item.get("name")
        # A tool's spec has the same wrapper with "parameters": an echo of the tool list,
        # refused below as a key that does not belong.
        allowed = ("arguments",) if wrapped else ("arguments", "parameters", "args")
        keys = [k for k in allowed if k in item]
        if not isinstance(name, str) or len(keys) > 1 or set(item) - {"name", *keys}:
            return None
        args = item[keys[0]] if keys else {}
        if isinstance(args, str):  # arguments as a JSON string, as OpenAI sends them
            try:
                args = json.loads(args)
            except ValueError:
                return None
        found.append((name, args))
    return found


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# JSON Schema keywords that small models copy from the tool's schema into their arguments
# ({"expression": "17*23", "type": "object", "required": ["expression"]}).
_SCHEMA_KEYWORDS: Final = frozenset(
    {"type", "required", "properties", "additionalProperties", "title", "description", "$schema"}
)


def _without_echoed_schema(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The arguments less the schema keywords the model copied in (never declared ones)."""
    declared = schema.get("properties")
    names = set(declared) if isinstance(declared, dict) else set()
    return {k: v for k, v in args.items() if k in names or k not in _SCHEMA_KEYWORDS}


def _as_tool_calls(
    pairs: Sequence[tuple[str, Any]], tools: Sequence[dict[str, Any]]
) -> list[ToolCall] | None:
    """The pairs as calls when each names a bound tool with an object of arguments.

    Arguments are not validated here: the tool registry validates every call, recovered
    or native, before it runs, and answers one that fails with the validation error, so
    the model may correct it instead of its call reaching the user as text.
    """
    by_name = {_name_of(t): t for t in tools}
    calls: list[ToolCall] = []
    for name, args in pairs:
        tool = by_name.get(name)
        if tool is None or not isinstance(args, dict):
            return None
        args = _without_echoed_schema(args, _schema_of(tool))
        # A fresh id per call, as a model server gives: a model that asks for the same
        # call again in a later round must not reuse the first call's id.
        calls.append(ToolCall(name=name, args=args, id=_call_id(), type="tool_call"))
    return calls


def _parse(text: str) -> tuple[list[tuple[str, Any]], str, str] | None:
    """Find calls in ``text``: ``(pairs, text besides them, format)`` or None."""
    stripped = text.strip()
    if "<tool_call>" in stripped:
        before = stripped.split("<tool_call>", 1)[0].strip()
        pairs: list[tuple[str, Any]] = []
        for body in _HERMES.findall(stripped):
            found = _as_calls(_loads(body))
            if found is None:
                return None
            pairs += found
        return (pairs, before, "hermes") if pairs else None
    if _PYTHON_TAG in stripped:
        before, body = stripped.split(_PYTHON_TAG, 1)
        found = _as_calls(_loads(body.strip()))
        return (found, before.strip(), "llama") if found else None
    if _MISTRAL in stripped:
        before, body = stripped.split(_MISTRAL, 1)
        found = _as_calls(_loads(body.strip()))
        if found is None:
            match = _MISTRAL_ARGS.fullmatch(body)
            if match is not None:
                args = _loads(match.group(2).strip())
                found = [(match.group(1), args)] if args is not None else None
        return (found, before.strip(), "mistral") if found else None
    fenced = _FENCE.match(stripped)
    if fenced is not None:
        found = _as_calls(_loads(fenced.group(1).strip()))
        return (found, "", "fenced_json") if found else None
    blocks = list(_JSON_FENCE.finditer(stripped))
    if blocks:  # prose, then the call in a JSON block ("I will use the calculator: ```json")
        in_blocks: list[tuple[str, Any]] = []
        for block in blocks:
            found = _as_calls(_loads(block.group(1).strip()))
            if found is None:
                return None
            in_blocks += [pair for pair in found if pair not in in_blocks]
        rest = _JSON_FENCE.sub("", stripped).strip()
        return in_blocks, rest, "fenced_json"
    if stripped.startswith(("{", "[")):
        found = _as_calls(_loads(stripped))
        if found is None:
            found = _json_lines(stripped)
        if found:
            return found, "", "json"
    return _call_lines(stripped)


# The tool list some chat templates print (``<tools>...</tools>``), echoed by the model.
_TOOLS_ECHO: Final = re.compile(r"<tools>.*?</tools>", re.DOTALL)


def _loads_call(line: str) -> Any:
    """A line's JSON, read once more without its outer braces when they are doubled.

    Qwen2.5's chat template shows the call format with doubled braces
    (``{{"name": ..., "arguments": ...}}``), and its models write calls that way.
    """
    value = _loads(line)
    if value is None and line.startswith("{{") and line.endswith("}}"):
        value = _loads(line[1:-1])
    return value


def _call_lines(text: str) -> tuple[list[tuple[str, Any]], str, str] | None:
    """Calls on lines of their own, after a lead-in and before a guess at their result.

    As Qwen2.5-Coder-1.5B writes them: "To calculate 17 * 23, I'll use the calculator
    function:", the call on the next line, then "The result is 391." The lead-in stays the
    reply's text; what follows the last call is the model's guess at a result it does not
    have yet, and is dropped: the tool's own result comes next.
    """
    pairs: list[tuple[str, Any]] = []
    first: int | None = None
    at = 0
    for line in text.splitlines(keepends=True):
        body = line.strip()
        found = _as_calls(_loads_call(body)) if body.startswith("{") else None
        if found:
            first = at if first is None else first
            pairs += [pair for pair in found if pair not in pairs]
        at += len(line)
    if first is None:
        return None
    return pairs, _TOOLS_ECHO.sub("", text[:first]).strip(), "json_line"


_DECODER: Final = json.JSONDecoder()


def _json_lines(text: str) -> list[tuple[str, Any]] | None:
    """Calls written one JSON object after another, on lines of their own; repeats merged.

    A reply cut short by its token limit may end in a call's first part: the complete
    calls before it count, the part is ignored.
    """
    pairs: list[tuple[str, Any]] = []
    at = 0
    while at < len(text):
        try:
            value, end = _DECODER.raw_decode(text, at)
        except ValueError:
            if pairs and text[at] == "{":
                break  # a call cut short at the end
            return None
        found = _as_calls(value)
        if found is None:
            return None
        pairs += [pair for pair in found if pair not in pairs]
        at = end
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
    return pairs or None


def recover_tool_calls(text: str, tools: Sequence[dict[str, Any]]) -> Recovered | None:
    """Read the tool calls a model wrote as text.

    Args:
        text: The reply's text.
        tools: The tools bound for the reply, as OpenAI tool specs.

    Returns:
        The calls, or None when the text holds none or names a tool that was not bound.
    """
    if not tools or not text:
        return None
    parsed = _parse(text)
    if parsed is None:
        return None
    pairs, before, fmt = parsed
    calls = _as_tool_calls(pairs, tools)
    return Recovered(calls, before, fmt) if calls else None


@dataclass
class StreamGuard:
    """Holds back streamed text that may be a tool call written as text.

    Text streams through until it could open a call: a reply whose first non-blank
    characters are ``{``, ``[{`` or a fence, a later line that opens with ``{``, or any of
    the tags (or a JSON fence) anywhere. From there on,
    text is held to the end of the reply, where :func:`recover_tool_calls` decides; held
    text past ``max_chars`` cannot be a call the tools would accept, and is let go. A
    possible beginning of a tag at the end of a piece waits for the next piece.

    Attributes:
        max_chars: The most text held back.
    """

    max_chars: int
    _seen: str = ""
    _shown: int = 0
    _held: list[str] = field(default_factory=list)
    _held_chars: int = 0
    _holding: bool = False
    _gave_up: bool = False

    @property
    def holding(self) -> bool:
        """Whether text is being held back as a possible call."""
        return self._holding

    def feed(self, text: str) -> str:
        """Take the next piece of the reply; return what may be shown now."""
        if self._gave_up:
            return text
        if self._holding:
            self._held.append(text)
            self._held_chars += len(text)
            return self.release() if self._held_chars > self.max_chars else ""
        self._seen += text
        cut = self._opening()
        if cut is not None:
            self._holding = True
            held = self._seen[cut:]
            self._held, self._held_chars = [held], len(held)
            return self._show(cut)
        return self._show(len(self._seen) - self._undecided())

    def release(self) -> str:
        """Stop holding: return all text not shown yet; the rest streams as it comes."""
        text = self._seen[self._shown :] if not self._holding else "".join(self._held)
        self._held, self._held_chars = [], 0
        self._holding, self._gave_up = False, True
        return text

    def _show(self, upto: int) -> str:
        out = self._seen[self._shown : upto]
        self._shown = max(self._shown, upto)
        return out

    def _opening(self) -> int | None:
        """Where text that opens a call begins (None: nowhere yet)."""
        seen = self._seen
        lead = len(seen) - len(seen.lstrip())
        if _HEAD.match(seen, lead):
            return lead
        for tag in _TAGS:
            at = seen.find(tag, max(0, self._shown - len(tag)))
            if at >= 0:
                return at
        line = _LINE_HEAD.search(seen, max(0, self._shown - 1))
        return None if line is None else line.start() + 1

    def _undecided(self) -> int:
        """How many characters at the end may still open a call once more text comes."""
        seen = self._seen
        body = seen.lstrip()
        if not body or (self._shown == 0 and _maybe_head(body)):
            return len(seen)
        for size in range(min(_LONGEST_TAG - 1, len(seen)), 0, -1):
            if any(tag.startswith(seen[-size:]) for tag in _TAGS):
                return size
        line = _LINE_END.search(seen)  # a new line may open with a call's brace
        return 0 if line is None else len(seen) - line.start() - 1


_TAGS: Final = ("<tool_call>", _PYTHON_TAG, _MISTRAL, "```json", "```tool_call", "```tool_code")
_LONGEST_TAG: Final = max(map(len, _TAGS))
_FENCE_HEAD: Final = r"```(?:json|tool_call|tool_code)?\s*"
# A line that opens with a brace, after some text: a call on a line of its own.
_LINE_HEAD: Final = re.compile(r"\n[ \t]*\{")
_LINE_END: Final = re.compile(r"\n[ \t]*\Z")
_HEAD: Final = re.compile(
    rf"\{{|\[\s*\{{|{_FENCE_HEAD}[\[{{]|<tool_call>|<\|python_tag\|>|\[TOOL_CALLS\]"
)


def _maybe_head(body: str) -> bool:
    """Whether the reply's first characters may still become an opening of a call."""
    if re.fullmatch(rf"\[\s*|{_FENCE_HEAD}", body):
        return True
    return any(o.startswith(body) for o in ("```json", "```tool_call", "```tool_code", *_TAGS))

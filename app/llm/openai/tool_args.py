"""The tool-call arguments of a streamed reply: held back until it ends, under a size cap.

LangChain parses the arguments of every message chunk it builds with
``parse_partial_json``, which repairs a fragment by dropping its last character and
parsing again until it parses: quadratic in the fragment's length, on the event loop
(a 200 KB argument in two fragments blocked it for 33 s). So the wire takes the argument
fragments out of the chunks it converts, keeps them here, and hands each call's whole
arguments over in one last chunk once the stream has ended, where valid JSON parses at
the first try, in linear time. Arguments that are not JSON and longer than a line are
replaced by a short note, which is not JSON either, so the reply is still refused as
malformed without parsing them again.

A reply's arguments may add up to ``llm.max_tool_args_bytes``. A call whose arguments
would pass that is refused: its fragments are dropped as they arrive (memory stays
bounded), its arguments become ``{}``, and the reply's
``response_metadata["refused_tool_calls"]`` maps its id to the reason, which the tool
node sends back to the model instead of running the call.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Final

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk

__all__ = ["REFUSED_TOOL_CALLS", "ToolArgs", "refused_tool_calls"]

REFUSED_TOOL_CALLS: Final = "refused_tool_calls"
"""The ``response_metadata`` key of the calls refused for their size: ``{call id: reason}``."""

_SHORT: Final = 1024
"""Invalid arguments up to this length are kept as sent (cheap to parse, useful to read)."""


class ToolArgs:
    """Collects the argument fragments of one streamed reply's tool calls."""

    def __init__(self, max_bytes: int) -> None:
        """Cap the reply's arguments, all calls together, at ``max_bytes`` (UTF-8)."""
        self.max_bytes = max_bytes
        self.parts: defaultdict[int, list[str]] = defaultdict(list)
        self.sizes: defaultdict[int, int] = defaultdict(int)
        self.ids: dict[int, str] = {}
        self.names: dict[int, str] = {}
        self.over: set[int] = set()
        self.total = 0

    def strip(self, chunk: dict[str, Any]) -> None:
        """Take the argument fragments out of a chat-completion chunk (in place), keeping them.

        Args:
            chunk: One parsed stream event of ``/chat/completions``.
        """
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            for call in calls or ():
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict):
                    continue
                index = call.get("index")
                index = index if isinstance(index, int) else 0
                if isinstance(call.get("id"), str):
                    self.ids.setdefault(index, call["id"])
                if isinstance(function.get("name"), str):
                    self.names.setdefault(index, function["name"])
                fragment = function.get("arguments")
                if isinstance(fragment, str) and fragment:
                    function["arguments"] = ""
                    self._add(index, fragment)

    def _add(self, index: int, fragment: str) -> None:
        if index in self.over:
            return
        size = len(fragment.encode())
        if self.total + size > self.max_bytes:
            self.over.add(index)
            self.total -= self.sizes.pop(index, 0)
            self.parts.pop(index, None)
            return
        self.parts[index].append(fragment)
        self.sizes[index] += size
        self.total += size

    def tail(self) -> AIMessageChunk | None:
        """Return the chunk that completes every call's arguments; None when none had any."""
        indexes = sorted({*self.parts, *self.over})
        if not indexes:
            return None
        chunks = []
        refused: dict[str, str] = {}
        for index in indexes:
            if index in self.over:
                args = "{}"
                name = self.names.get(index, "the tool")
                refused[self.ids.get(index, "")] = (
                    f"Error: the arguments of this call to {name} were longer than "
                    f"{self.max_bytes} bytes, so it was not run. Call it again with shorter "
                    "arguments, or answer without it."
                )
            else:
                args = _checked("".join(self.parts[index]))
            chunks.append(tool_call_chunk(name=None, args=args, id=None, index=index))
        metadata = {REFUSED_TOOL_CALLS: refused} if refused else {}
        return AIMessageChunk(content="", tool_call_chunks=chunks, response_metadata=metadata)


def _checked(args: str) -> str:
    """``args`` when it is JSON or short; else a note that is not JSON either."""
    if len(args) <= _SHORT:
        return args
    try:
        json.loads(args)
    except ValueError:
        return f"<{len(args)} characters that are not JSON>"
    return args


def refused_tool_calls(metadata: dict[str, Any]) -> dict[str, str]:
    """Return the calls of a reply that were refused for their size: ``{call id: reason}``."""
    refused = metadata.get(REFUSED_TOOL_CALLS)
    if not isinstance(refused, dict):
        return {}
    return {str(k): str(v) for k, v in refused.items()}

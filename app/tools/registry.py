"""A registry of LangChain tools that validates and executes model tool calls safely.

Every failure a model can cause (an unknown tool, bad arguments, a crash, a timeout) comes
back as an error ``ToolMessage`` the model can read and use to repair its call, never as an
exception. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel

from app.tools._text import cap, shorten, stringify
from app.tools.builtins import BUILTIN_TOOLS
from app.tools.risk import Outcome, Risk, risk_of

__all__ = ["ToolRegistry", "default_registry"]

logger = logging.getLogger(__name__)


def _args_schema(tool: BaseTool) -> dict[str, Any]:
    """Build the JSON schema of the arguments a model must send to ``tool``.

    Injected arguments are already hidden by ``tool_call_schema``. Unless the schema says
    otherwise, properties the tool does not declare are rejected.
    """
    call_schema = tool.tool_call_schema
    if isinstance(call_schema, dict):
        schema = copy.deepcopy(call_schema)
    elif isinstance(call_schema, type) and issubclass(call_schema, BaseModel):
        # Deep copy: LangChain caches the generated dict, which must stay untouched.
        schema = copy.deepcopy(call_schema.model_json_schema())
    else:  # pragma: no cover - pydantic v1 models are not supported by this project
        raise TypeError(f"tool {tool.name!r} has an unsupported args schema {call_schema!r}")
    if (
        schema.get("type") == "object"
        and not {
            "additionalProperties",
            "patternProperties",
            "unevaluatedProperties",
        }
        & schema.keys()
    ):
        schema["additionalProperties"] = False
    return schema


def _failure(name: str, exc: Exception) -> str:
    """Log a tool's exception and describe it to the model."""
    # Only the type: an exception's message may quote the arguments (user data).
    logger.warning("tool %r failed: %s", name, type(exc).__name__)
    detail = shorten(str(exc) or "no details")
    return (
        f"Error: tool {name!r} failed: {type(exc).__name__}: {detail}. "
        "Fix the arguments and call the tool again if that can help."
    )


class ToolRegistry:
    """The set of tools an agent may call, keyed by their unique names.

    Args:
        tools: The tools to register; each name must be unique.

    Raises:
        ValueError: Two tools share a name, or a tool's argument schema is invalid.
    """

    def __init__(self, tools: Sequence[BaseTool]) -> None:
        """Register ``tools`` and precompile a JSON-schema validator for each."""
        self._tools: dict[str, BaseTool] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        self._injected: dict[str, frozenset[str]] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name {tool.name!r}")
            schema = _args_schema(tool)
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ValueError(
                    f"tool {tool.name!r} has an invalid argument schema: {exc.message}"
                ) from exc
            self._tools[tool.name] = tool
            self._schemas[tool.name] = schema
            self._validators[tool.name] = Draft202012Validator(schema)
            # Arguments in the tool's input schema but hidden from the model are injected.
            full: dict[str, Any] = getattr(tool.get_input_schema(), "model_fields", {})
            hidden = set(full) - set(schema.get("properties", {}))
            self._injected[tool.name] = frozenset(hidden)

    @property
    def tools(self) -> list[BaseTool]:
        """The registered tools in registration order, e.g. for ``model.bind_tools``."""
        return list(self._tools.values())

    @property
    def names(self) -> tuple[str, ...]:
        """The registered tool names in registration order."""
        return tuple(self._tools)

    def __len__(self) -> int:
        """Return how many tools are registered."""
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        """Return whether a tool called ``name`` is registered."""
        return name in self._tools

    def __iter__(self) -> Iterator[BaseTool]:
        """Iterate over the registered tools in registration order."""
        return iter(self.tools)

    def risk(self, name: str) -> Risk:
        """Return the risk class of the tool called ``name``.

        Raises:
            KeyError: No tool has that name.
        """
        return risk_of(self.get(name))

    def _unknown(self, name: str) -> str:
        """Describe an unknown tool name and list the available ones."""
        available = ", ".join(self._tools) or "none"
        return f"unknown tool {name!r}; available tools: {available}"

    def get(self, name: str) -> BaseTool:
        """Return the tool called ``name``.

        Args:
            name: The tool's name.

        Returns:
            The registered tool.

        Raises:
            KeyError: No tool has that name.
        """
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(self._unknown(name)) from None

    def schema(self, name: str) -> dict[str, Any]:
        """Return the JSON schema of the arguments the model must send to a tool.

        Injected arguments are not part of it, and undeclared properties are rejected
        (``additionalProperties: false``) unless the tool's own schema allows them.

        Args:
            name: The tool's name.

        Returns:
            A fresh copy of the schema, safe to modify.

        Raises:
            KeyError: No tool has that name.
        """
        self.get(name)
        return copy.deepcopy(self._schemas[name])

    def validate(self, name: str, args: Any) -> list[str]:
        """Check tool-call arguments against the tool's schema.

        Args:
            name: The tool the model called.
            args: The arguments the model sent.

        Returns:
            Readable problems, each ``"<JSON path>: <message>"`` (``$`` is the argument
            object itself), sorted by path; empty when the call is valid. An unknown tool
            yields one message that lists the available tools.
        """
        validator = self._validators.get(name)
        if validator is None:
            return [self._unknown(name)]
        errors = sorted(validator.iter_errors(args), key=lambda error: error.json_path)
        return [f"{error.json_path}: {shorten(error.message)}" for error in errors]

    async def execute(
        self,
        call: ToolCall,
        *,
        timeout_s: float,
        max_output_chars: int = 4000,
        inject: Mapping[str, Any] | None = None,
    ) -> ToolMessage:
        """Validate and run one tool call, turning every failure into an error message.

        A timed-out synchronous tool keeps running in its worker thread; only its result
        is abandoned. Give blocking tools their own timeouts as well.

        Args:
            call: The tool call from the model's ``AIMessage.tool_calls``.
            timeout_s: Seconds the tool may run before the call fails with a timeout.
            max_output_chars: Longest content returned; longer output is cut and ends
                with a truncation notice.
            inject: Values for the tool's injected arguments (hidden from the model),
                by argument name; names the tool does not declare are ignored.

        Returns:
            A ``ToolMessage`` answering ``call``: ``status="success"`` with the tool's
            output, or ``status="error"`` with content starting ``"Error: "`` that says
            what went wrong and how to fix the call. ``response_metadata["outcome"]``
            is ``ok``, ``error``, ``timeout``, ``invalid_arguments`` or ``unknown_tool``.

        Raises:
            ValueError: ``timeout_s`` or ``max_output_chars`` is not positive.
            asyncio.CancelledError: The surrounding task was cancelled.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_output_chars <= 0:
            raise ValueError(f"max_output_chars must be positive, got {max_output_chars}")
        name = call.get("name", "")
        call_id = call.get("id") or ""
        args: Any = call.get("args", {})

        def reply(
            content: str,
            status: Literal["success", "error"] = "error",
            artifact: Any = None,
            outcome: Outcome = "error",
        ) -> ToolMessage:
            return ToolMessage(
                content=cap(content, max_output_chars),
                tool_call_id=call_id,
                name=name,
                status=status,
                artifact=artifact,
                response_metadata={"outcome": "ok" if status == "success" else outcome},
            )

        tool = self._tools.get(name)
        if tool is None:
            return reply(
                f"Error: {self._unknown(name)}. Call one of the available tools.",
                outcome="unknown_tool",
            )
        problems = self.validate(name, args)
        if problems:
            details = "\n".join(f"- {problem}" for problem in problems)
            return reply(
                f"Error: invalid arguments for tool {name!r}:\n{details}\n"
                f"Fix the arguments to match this schema and call the tool again: "
                f"{json.dumps(self._schemas[name], ensure_ascii=False)}",
                outcome="invalid_arguments",
            )

        hidden = {k: v for k, v in (inject or {}).items() if k in self._injected[name]}
        invocation = ToolCall(
            name=name, args={**args, **hidden}, id=call_id or None, type="tool_call"
        )
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                output = await tool.ainvoke(invocation)
        except TimeoutError as exc:
            if deadline.expired():
                logger.warning("tool %r timed out after %s s", name, timeout_s)
                return reply(
                    f"Error: tool {name!r} timed out after {timeout_s:g} s. Try a simpler "
                    "request, or continue without this tool's result.",
                    outcome="timeout",
                )
            # The tool's own deadline (a client's, an MCP server's): a timeout all the same.
            return reply(_failure(name, exc), outcome="timeout")
        except Exception as exc:
            return reply(_failure(name, exc))

        if isinstance(output, ToolMessage):
            content = stringify(output.content)
            if output.status == "error":  # e.g. a ToolException the tool itself handled
                prefix = "" if content.startswith("Error") else "Error: "
                return reply(prefix + content, "error", output.artifact)
            return reply(content, "success", output.artifact)
        return reply(stringify(output), "success")


def default_registry() -> ToolRegistry:
    """Build a registry holding the built-in tools.

    Returns:
        A new ``ToolRegistry`` with ``calculator`` and ``current_time``.
    """
    return ToolRegistry(BUILTIN_TOOLS)

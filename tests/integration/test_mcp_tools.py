"""MCP servers' tools as agent tools: loading from a real stdio server, risk classes and
policies, secrets from the environment, and servers that are down or misconfigured."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx
from langchain_core.messages import ToolCall
from pydantic import ValidationError

from app.mcp import aload_tools, connection_for, load_tools
from app.settings import McpServerSettings, McpSettings, Settings, ToolSettings
from app.tools.catalog import build_registry
from app.tools.executor import Toolbox
from tests.servers import REPO, free_port, service

pytestmark = pytest.mark.integration


def stdio(name: str = "desk", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "tests.mcp_tool_server", "stdio"],
        "cwd": str(REPO),
        **extra,
    }


async def test_tools_are_prefixed_and_get_risk_classes_that_decide_approval(
    tmp_path: Path,
) -> None:
    cfg = McpSettings(servers=[stdio(), stdio("ro", read_only=True, tools=["save_memo"])])

    tools = await aload_tools(cfg)

    names = [t.name for t in tools]
    assert names[:3] == ["desk_add", "desk_save_memo", "desk_wait"]
    assert {"desk_big", "desk_broken"} <= set(names) and names[-1] == "ro_save_memo"
    registry = build_registry(ToolSettings(), tools)
    box = Toolbox(Settings(data_dir=tmp_path), registry)
    assert box.policy("desk_add") == "allow"  # readOnlyHint
    assert box.policy("desk_save_memo") == "require_approval"  # no hint: a write
    assert box.policy("ro_save_memo") == "allow"  # the config says the server only reads
    assert registry.schema("desk_add")["additionalProperties"] is False


async def test_a_call_is_validated_then_answered_as_text() -> None:
    [add] = await aload_tools(McpSettings(servers=[stdio(tools=["add"])]))
    registry = build_registry(ToolSettings(enabled=[]), [add])

    call = ToolCall(name="desk_add", args={"a": 1, "b": 2}, id="1", type="tool_call")
    answered = await registry.execute(call, timeout_s=30)
    refused = await registry.execute({**call, "args": {"a": "1", "b": 2}}, timeout_s=30)

    assert (answered.status, answered.content) == ("success", "The sum is 3.")
    assert refused.response_metadata["outcome"] == "invalid_arguments"


async def test_a_server_timeout_is_a_timeout_outcome() -> None:
    [wait] = await aload_tools(McpSettings(servers=[stdio(tools=["wait"], timeout_s=1)]))
    registry = build_registry(ToolSettings(enabled=[]), [wait])

    call = ToolCall(name="desk_wait", args={"seconds": 30}, id="1", type="tool_call")
    started = time.monotonic()
    message = await registry.execute(call, timeout_s=30)

    assert time.monotonic() - started < 10
    assert message.response_metadata["outcome"] == "timeout"
    assert "did not answer within 1 s" in str(message.content)


def test_servers_that_are_down_or_lack_a_secret_are_left_out(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOARD_TOKEN", raising=False)
    cfg = McpSettings(
        connect_timeout_s=5,
        servers=[
            {"name": "gone", "transport": "http", "url": f"http://127.0.0.1:{free_port()}/mcp"},
            {"name": "nobin", "transport": "stdio", "command": "/nonexistent/mcp-server"},
            {
                "name": "board",
                "transport": "http",
                "url": "http://127.0.0.1:9/mcp",
                "headers_from_env": {"Authorization": "BOARD_TOKEN"},
            },
        ],
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ragent.mcp"):
        assert load_tools(cfg) == []
    assert time.monotonic() - started < 10
    said = caplog.text
    assert "'gone' is unavailable" in said and "'nobin' is unavailable" in said
    assert "needs the environment variable BOARD_TOKEN" in said


def test_headers_and_env_come_only_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARD_TOKEN", "Bearer s3cret")
    monkeypatch.setenv("DESK_KEY", "k")
    http = McpServerSettings(
        name="board",
        transport="http",
        url="https://tools.example/mcp",
        headers_from_env={"Authorization": "BOARD_TOKEN"},
    )
    desk = McpServerSettings(**stdio(env_from=["DESK_KEY"]))

    assert connection_for(http)["headers"] == {"Authorization": "Bearer s3cret"}  # type: ignore[typeddict-item]
    assert connection_for(desk)["env"] == {"DESK_KEY": "k"}  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    "server",
    [
        {"name": "my_server", "transport": "http", "url": "http://x/mcp"},  # "_" splits names
        {"name": "a", "transport": "stdio"},  # no command
        {"name": "a", "transport": "http", "url": "file:///etc/passwd"},
        {"name": "a", "transport": "http", "url": "http://x/mcp", "headers": {"A": "secret"}},
        {"name": "a", "transport": "http", "url": "http://x/mcp", "command": "sh"},
        {"name": "a", "transport": "stdio", "command": "x", "env_from": ["A=1"]},
    ],
)
def test_bad_server_settings_are_refused(server: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        McpSettings(servers=[server])


def test_two_servers_cannot_share_a_name() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        McpSettings(servers=[stdio("a"), stdio("a")])


async def test_calls_over_stdio_and_http_make_no_blocking_call(tmp_path: Path) -> None:
    """``langgraph dev`` stops a run that blocks the event loop; MCP calls must not."""
    port = free_port()
    board = [sys.executable, "-m", "tests.mcp_tool_server", "http", str(port)]
    with service(board, health_url=f"http://127.0.0.1:{port}/healthz", env={}):
        http = {"name": "board", "transport": "http", "url": f"http://127.0.0.1:{port}/mcp"}
        tools = await aload_tools(McpSettings(servers=[stdio(tools=["add"]), http]))
        registry = build_registry(ToolSettings(enabled=[]), tools)
        with blockbuster_ctx("app"):
            for name in ("desk_add", "board_add"):
                call = ToolCall(name=name, args={"a": 1, "b": 2}, id="1", type="tool_call")
                answered = await registry.execute(call, timeout_s=30)
                assert (answered.status, answered.content) == ("success", "The sum is 3.")


async def test_a_huge_http_response_is_cut_off_not_read_into_memory() -> None:
    port = free_port()
    board = [sys.executable, "-m", "tests.mcp_tool_server", "http", str(port)]
    with service(board, health_url=f"http://127.0.0.1:{port}/healthz", env={}):
        http = {"name": "board", "transport": "http", "url": f"http://127.0.0.1:{port}/mcp"}
        tools = await aload_tools(McpSettings(servers=[{**http, "tools": ["big"]}]))
        registry = build_registry(ToolSettings(enabled=[]), tools)

        small = await registry.execute(
            ToolCall(name="board_big", args={"size": 10}, id="1", type="tool_call"), timeout_s=30
        )
        started = time.monotonic()
        huge = await registry.execute(
            ToolCall(name="board_big", args={"size": 3_000_000}, id="2", type="tool_call"),
            timeout_s=30,
        )

    assert (small.status, small.content) == ("success", "x" * 10)
    assert huge.status == "error"
    assert "the response passed 2000000 bytes" in str(huge.content)
    assert time.monotonic() - started < 20

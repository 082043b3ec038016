"""Tools from elsewhere (MCP servers) in the registry: offered after the built-in ones,
never under a taken name, with the policy of their risk class."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool, StructuredTool

from app.settings import Settings, SettingsError, ToolSettings
from app.tools.catalog import build_registry
from app.tools.executor import Toolbox
from app.tools.risk import Risk, with_risk


def remote(name: str, risk: Risk | None = None) -> BaseTool:
    async def run(text: str) -> str:
        return text

    tool = StructuredTool.from_function(coroutine=run, name=name, description="Echo.")
    return with_risk(tool, risk) if risk else tool


def test_extra_tools_come_after_the_enabled_built_ins() -> None:
    registry = build_registry(
        ToolSettings(enabled=["calculator"]), [remote("desk_echo", "read"), remote("desk_x")]
    )

    assert registry.names == ("calculator", "desk_echo", "desk_x")


def test_an_extra_tool_under_a_taken_name_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        registry = build_registry(
            ToolSettings(enabled=["calculator"]),
            [remote("calculator", "read"), remote("desk_a"), remote("desk_a")],
        )

    assert registry.names == ("calculator", "desk_a")
    assert registry.risk("calculator") == "compute"  # the built-in one
    assert "'calculator' left out" in caplog.text


def test_policies_name_built_in_tools_only() -> None:
    with pytest.raises(SettingsError, match="unknown tool 'desk_a'"):
        build_registry(ToolSettings(policies={"desk_a": "allow"}), [remote("desk_a")])


def test_an_extra_tool_without_a_risk_class_needs_approval(tmp_path: Path) -> None:
    registry = build_registry(ToolSettings(), [remote("desk_a"), remote("desk_b", "read")])
    box = Toolbox(Settings(data_dir=tmp_path), registry)

    assert (box.policy("desk_a"), box.policy("desk_b")) == ("require_approval", "allow")

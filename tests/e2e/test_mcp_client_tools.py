"""Tools of configured MCP servers in the agent, on the real server with the official SDK.

A small FastMCP server (:mod:`tests.mcp_tool_server`) runs over stdio (started by ragent
for each call) and over streamable HTTP (started here); a third configured server is
down. The scripted model calls the MCP tools through ``/v1/chat/completions``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from app.settings import CONFIG_DIR
from tests.e2e.conftest import Corpus, fresh_data_dir, running
from tests.openai_server import OpenAIServer, Reply, ToolCalls, openai_server
from tests.servers import BIN, REPO, free_port, service

pytestmark = pytest.mark.e2e

MODEL = "scripted-model"
TOOL_TIMEOUT_S = 3


@dataclass
class Setup:
    url: str
    model: OpenAIServer
    calls_log: Path
    log: list[str]
    data_dir: Path

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="none", max_retries=0, timeout=90)

    def audit(self) -> list[dict[str, Any]]:
        path = self.data_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def calls(self) -> list[dict[str, Any]]:
        """The calls that reached an MCP tool, in order."""
        if not self.calls_log.exists():
            return []
        return [json.loads(line) for line in self.calls_log.read_text().splitlines()]


def _profile(root: Path, http_port: int, down_port: int) -> Path:
    values = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    values["tools"] = {"rate_limits": {"desk_big": "1/minute"}}
    values["mcp"] = {
        "connect_timeout_s": 20,
        "servers": [
            {
                "name": "desk",
                "transport": "stdio",
                "command": sys.executable,
                "args": ["-m", "tests.mcp_tool_server", "stdio"],
                "cwd": str(REPO),
                "env_from": ["MCP_TEST_LOG"],
                "timeout_s": TOOL_TIMEOUT_S,
            },
            {
                "name": "board",
                "transport": "http",
                "url": f"http://127.0.0.1:{http_port}/mcp",
                "tools": ["add", "save_memo"],
            },
            {"name": "gone", "transport": "http", "url": f"http://127.0.0.1:{down_port}/mcp"},
        ],
    }
    path = root / "mcp.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def setup(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("mcp-client")
    data_dir = fresh_data_dir(corpus, root)
    calls_log = root / "mcp-calls.jsonl"
    http_port, down_port, port = free_port(), free_port(), free_port()
    tool_env = {"MCP_TEST_LOG": str(calls_log)}
    board = [sys.executable, "-m", "tests.mcp_tool_server", "http", str(http_port)]
    with (
        openai_server() as model,
        service(board, health_url=f"http://127.0.0.1:{http_port}/healthz", env=tool_env),
    ):
        env = {
            **tool_env,
            "RAGENT_CONFIG": str(_profile(root, http_port, down_port)),
            "RAGENT_DATA_DIR": str(data_dir),
            "RAGENT_LLM_BASE_URL": model.base_url,
            "RAGENT_LLM_MODEL": MODEL,
            "RAGENT_LLM_OFFLINE_FALLBACK": "false",
            "RAGENT_LLM_MAX_RETRIES": "0",
            "RAGENT_MEMORY_EXTRACTION": "explicit",
            "RAGENT_MEMORY_SUMMARIZER": "extractive",
            "RAGENT_LIMITS_TOOL_TIMEOUT_S": "20",
        }
        url = f"http://127.0.0.1:{port}"
        args = [str(BIN / "ragent"), "serve", "--no-auth", "--port", str(port)]
        with running(args, health_url=f"{url}/healthz", env=env, cwd=root) as log:
            yield Setup(url, model, calls_log, log, data_dir)


@pytest.fixture(name="model")
def model_fixture(setup: Setup) -> Iterator[OpenAIServer]:
    setup.model.reset()
    yield setup.model
    setup.model.reset()


def ask(setup: Setup, question: str) -> Any:
    return setup.client().chat.completions.create(
        model="ragent", messages=[{"role": "user", "content": question}]
    )


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_the_model_is_offered_the_servers_tools_by_prefixed_name(
    setup: Setup, model: OpenAIServer
) -> None:
    model.plan(MODEL, Reply("Hello."))

    ask(setup, "Hello there")

    offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
    assert {"desk_add", "desk_save_memo", "desk_wait", "desk_broken"} <= set(offered)
    assert {"board_add", "board_save_memo"} <= set(offered)
    assert "board_wait" not in offered  # not in the server's tools allowlist
    assert not any(name.startswith("gone_") for name in offered)  # down at start-up
    assert offered["desk_add"]["parameters"]["required"] == ["a", "b"]


@pytest.mark.parametrize("server", ["desk", "board"])
def test_a_read_only_tool_is_called_and_answers(
    setup: Setup, model: OpenAIServer, server: str
) -> None:
    model.plan(
        MODEL,
        ToolCalls([(f"{server}_add", json.dumps({"a": 2, "b": 40}))]),
        Reply("2 and 40 make 42."),
    )

    done = ask(setup, "What is 2 plus 40?")

    assert done.choices[0].message.content == "2 and 40 make 42."
    assert tool_results(model.requests[-1]) == ["The sum is 42."]
    assert {"tool": "add", "args": {"a": 2, "b": 40}} in setup.calls()


def test_a_write_tool_waits_for_approval_before_it_runs(setup: Setup, model: OpenAIServer) -> None:
    memo = {"title": "Staging", "body": "Rebuilt on Tuesdays."}
    model.plan(MODEL, ToolCalls([("board_save_memo", json.dumps(memo))]), Reply("Saved."))
    before = len(setup.calls())

    paused = ask(setup, "Put a memo about staging on the board.")

    choice = paused.choices[0]
    assert choice.finish_reason == "tool_calls"
    [approval] = (choice.message.model_extra or {})["approvals"]
    assert (approval["tool"], approval["risk"]) == ("board_save_memo", "write")
    assert len(setup.calls()) == before  # nothing reached the server yet

    thread = (paused.model_extra or {})["conversation_id"]
    resumed = httpx.post(
        f"{setup.url}/v1/threads/{thread}/resume", json={"decision": "approve"}, timeout=90
    )
    assert resumed.status_code == 200, resumed.text
    assert setup.calls()[before:] == [{"tool": "save_memo", "args": memo}]
    assert tool_results(model.requests[-1]) == ["Saved memo 'Staging'."]
    [record] = [r for r in setup.audit() if r["tool"] == "board_save_memo"]
    assert (record["risk"], record["outcome"], record["approved_by_user"]) == ("write", "ok", True)
    assert record["args"]["title"] == "Staging"


def test_per_tool_rate_limits_apply(setup: Setup, model: OpenAIServer) -> None:
    calls = [("desk_big", json.dumps({"size": n})) for n in (1, 2)]
    model.plan(MODEL, ToolCalls(calls), Reply("One of them ran."))

    ask(setup, "Make two small strings.")

    ran, refused = sorted(tool_results(model.requests[-1]), key=lambda text: text.startswith("E"))
    assert ran in {"x", "xx"}  # the two calls run concurrently: either may come first
    assert refused.startswith("Error: rate limit reached for tool 'desk_big' (1 per 1 minute)")
    outcomes = sorted(r["outcome"] for r in setup.audit() if r["tool"] == "desk_big")
    assert outcomes == ["ok", "rate_limited"]


def test_a_hanging_tool_times_out_with_a_tool_error(setup: Setup, model: OpenAIServer) -> None:
    model.plan(
        MODEL, ToolCalls([("desk_wait", json.dumps({"seconds": 60}))]), Reply("It took too long.")
    )

    done = ask(setup, "Wait a minute, please.")

    assert done.choices[0].message.content == "It took too long."
    [result] = tool_results(model.requests[-1])
    assert result.startswith("Error: ")
    assert f"did not answer within {TOOL_TIMEOUT_S} s" in result


def test_an_mcp_error_result_is_a_tool_error(setup: Setup, model: OpenAIServer) -> None:
    model.plan(MODEL, ToolCalls([("desk_broken", "{}")]), Reply("The board is closed."))

    ask(setup, "Use the broken tool.")

    [result] = tool_results(model.requests[-1])
    assert result.startswith("Error") and "the board is closed today" in result


@pytest.mark.parametrize(
    "arguments",
    ['{"a": "two", "b": 3}', '{"a": 1}', '{"a": 1, "b": 2, "c": 3}', '{"a": 1.5, "b": 1}'],
)
def test_malformed_arguments_never_reach_the_server(
    setup: Setup, model: OpenAIServer, arguments: str
) -> None:
    model.plan(MODEL, ToolCalls([("board_add", arguments)]), Reply("I could not add them."))
    before = len(setup.calls())

    ask(setup, "Add these for me.")

    [result] = tool_results(model.requests[-1])
    assert result.startswith("Error: ")
    assert len(setup.calls()) == before


def test_a_server_down_at_start_up_is_reported_and_the_agent_still_answers(
    setup: Setup, model: OpenAIServer
) -> None:
    model.plan(MODEL, Reply("Still here."))

    assert ask(setup, "Are you there?").choices[0].message.content == "Still here."

    report = httpx.get(f"{setup.url}/healthz/dependencies", timeout=30).json()
    checks = report["checks"]
    assert checks["mcp_server (gone)"]["status"] == "error"
    assert checks["mcp_server (desk)"] == {"status": "ok"}
    assert checks["mcp_server (board)"] == {"status": "ok"}
    assert report["status"] == "degraded"
    ready = httpx.get(f"{setup.url}/readyz", timeout=30)
    assert ready.status_code == 200
    assert "gone" in "".join(setup.log)  # the start-up warning names the server

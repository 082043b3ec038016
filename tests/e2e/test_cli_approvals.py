"""Approvals and memory on the real CLI, across processes, with an OpenAI-protocol model.

``ragent ask`` stops with exit code 3 when the model asks for ``create_note``; a second
process (``ragent resume``) approves it from the SQLite checkpoint; a third lists the note.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.openai_server import Reply, ToolCalls, openai_server
from tests.servers import ragent

pytestmark = pytest.mark.e2e

MODEL = "scripted-model"


def _env(data: Path, url: str) -> dict[str, str]:
    return {
        "RAGENT_DATA_DIR": str(data),
        "RAGENT_LLM_BASE_URL": url,
        "RAGENT_LLM_MODEL": MODEL,
        "RAGENT_LLM_OFFLINE_FALLBACK": "false",
        "RAGENT_MEMORY_EXTRACTION": "explicit",
    }


def test_approval_is_given_in_a_later_process(tmp_path: Path) -> None:
    note = json.dumps({"title": "Groceries", "text": "buy oat milk"})
    with openai_server() as srv:
        srv.plan(MODEL, ToolCalls([("create_note", note)]), Reply("Saved your note."))
        env = _env(tmp_path / "data", srv.base_url)

        first = ragent("ask", "Save a note: buy oat milk", "--thread", "t1", "--json", env=env)
        assert first.returncode == 3, first.stderr
        paused = json.loads(first.stdout)
        assert paused["answer"] == "Waiting for your approval to run: create_note."
        [approval] = paused["approvals"]
        assert (approval["tool"], approval["risk"]) == ("create_note", "write")
        assert approval["args"] == {"title": "Groceries", "text": "buy oat milk"}

        listed = ragent("memory", "list", "--notes", "--json", env=env)
        assert json.loads(listed.stdout) == {"notes": []}  # nothing written yet

        nothing = ragent("resume", "--thread", "other", "--approve", env=env)
        assert nothing.returncode == 2
        assert "ragent: error: thread 'other' has no tool call waiting" in nothing.stderr

        second = ragent("resume", "--thread", "t1", "--approve", "--json", env=env)
        assert second.returncode == 0, second.stderr
        done = json.loads(second.stdout)
        assert done["answer"] == "Saved your note." and "approvals" not in done

    notes = json.loads(ragent("memory", "list", "--notes", "--json", env=env).stdout)["notes"]
    assert [(n["title"], n["text"], n["origin"]) for n in notes] == [
        ("Groceries", "buy oat milk", "tool")
    ]
    other = json.loads(
        ragent("memory", "list", "--notes", "--json", "--user", "mallory", env=env).stdout
    )
    assert other == {"notes": []}
    audit = [
        json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()
    ]
    assert [(r["tool"], r["outcome"], r["approved_by_user"]) for r in audit] == [
        ("create_note", "ok", True)
    ]


def test_deny_flag_answers_without_running_the_tool(tmp_path: Path) -> None:
    note = json.dumps({"title": "x", "text": "y"})
    with openai_server() as srv:
        srv.plan(MODEL, ToolCalls([("create_note", note)]), Reply("Not saved."))
        env = _env(tmp_path / "data", srv.base_url)
        result = ragent("ask", "Save a note", "--deny", "--json", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["answer"] == "Not saved."
        tool_reply = [m for m in srv.requests[-1]["messages"] if m["role"] == "tool"]
        assert "did not approve" in tool_reply[0]["content"]
    notes = json.loads(ragent("memory", "list", "--notes", "--json", env=env).stdout)
    assert notes == {"notes": []}


def test_memory_commands_list_and_delete(tmp_path: Path) -> None:
    env = {"RAGENT_DATA_DIR": str(tmp_path / "data")}
    said = ragent("ask", "Remember that my locker code is 4512.", "--json", env=env)
    assert said.returncode == 0, said.stderr
    [memory] = json.loads(ragent("memory", "list", "--json", env=env).stdout)["memories"]
    assert memory["text"] == "The user's locker code is 4512." and memory["origin"] == "explicit"
    assert json.loads(ragent("memory", "list", "--json", "--user", "x", env=env).stdout) == {
        "memories": []
    }

    wrong_user = ragent("memory", "delete", memory["id"], "--user", "x", env=env)
    assert wrong_user.returncode == 2 and "has no memory" in wrong_user.stderr
    bad = ragent("memory", "delete", env=env)
    assert (
        bad.returncode == 2 and bad.stderr.strip() == "ragent: error: give one memory id, or --all"
    )

    gone = ragent("memory", "delete", memory["id"], env=env)
    assert gone.returncode == 0 and memory["id"] in gone.stdout
    assert json.loads(ragent("memory", "list", "--json", env=env).stdout) == {"memories": []}

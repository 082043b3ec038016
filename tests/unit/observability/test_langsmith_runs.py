"""What a LangSmith run keeps after redaction: its tree, timings and allowlisted attributes."""

from __future__ import annotations

from typing import Any

from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from app.config.observability import ObservabilitySettings
from app.observability.langsmith import langsmith_requested, setup_langsmith
from app.observability.run_allowlist import redact_run

EMAIL = "mallory.quokka@example.net"
TREE = {
    "id": "01a24d8e-6424-7503-972b-0a685c33814a",
    "trace_id": "01a24d8e-6424-7503-972b-0a685c33814a",
    "dotted_order": "20261206T225147108917Z01a24d8e-6424-7503-972b-0a685c33814a",
    "parent_run_id": None,
    "start_time": "2026-12-06T22:51:47.108917+00:00",
    "end_time": "2026-12-06T22:51:47.133053+00:00",
    "session_name": "default",
    "reference_example_id": "5d0c7a3e-0000-4000-8000-000000000000",
}


def test_the_tree_and_timings_pass_and_content_does_not() -> None:
    run: dict[str, Any] = {
        **TREE,
        "name": "ragent",
        "run_type": "chain",
        "inputs": {"messages": [{"type": "human", "content": f"I am {EMAIL}"}]},
        "outputs": {"route": "rag", "tier": "small", "sources": [{"text": "secret"}] * 3},
        "attachments": {"upload": ("text/plain", b"document text")},
        "child_runs": [{"inputs": {"q": EMAIL}}],
        "whatever": EMAIL,
    }
    out = redact_run(run)
    assert out == {
        **TREE,
        "name": "ragent",
        "run_type": "chain",
        "inputs": {},
        "outputs": {"route": "rag", "tier": "small", "hits": 3},
    }


def test_errors_keep_their_type_only() -> None:
    error = f"ValueError('no account for {EMAIL}')\n\nTraceback (most recent call last):\n..."
    interrupt = "GraphInterrupt((Interrupt(value={'args': {'to': '" + EMAIL + "'}}),))"
    assert redact_run({"error": error})["error"] == "ValueError"
    assert redact_run({"error": interrupt})["error"] == "GraphInterrupt"
    assert redact_run({"error": "KeyError: 'x'"})["error"] == "KeyError"
    assert redact_run({"error": f"{EMAIL} broke"})["error"] == "Error"  # no type to name


def test_events_tags_metadata_and_serialized_are_allowlisted() -> None:
    out = redact_run(
        {
            "events": [
                {"name": "start", "time": "t0"},
                {"name": "new_token", "time": "t1", "kwargs": {"token": "Mallory"}},
                {"name": "retry", "time": "t2", "kwargs": {"exception": f"no {EMAIL}"}},
            ],
            "tags": ["graph:step:3", "seq:step:1", f"user:{EMAIL}", "mallory"],
            "extra": {
                "invocation_params": {"model": "gpt-4o", "stop": [f"Thanks {EMAIL}"]},
                "metadata": {
                    "thread_id": f"acme/{EMAIL}/t1",
                    "user_id": EMAIL,
                    "langgraph_node": "respond",
                    "langgraph_step": 5,
                    "langgraph_triggers": ["branch:to:respond"],
                    "ls_model_name": EMAIL,  # an allowlisted key holding personal data
                    "ls_temperature": 0.2,
                },
            },
            "serialized": {
                "id": ["app", "llm", "offline", "ExtractiveAnswerer"],
                "repr": f"ExtractiveAnswerer(owner={EMAIL!r})",
                "kwargs": {"base_url": "http://user:pass@llm:8000/v1"},
            },
        }
    )
    assert out["events"] == [
        {"name": "start", "time": "t0"},
        {"name": "new_token", "time": "t1"},
        {"name": "retry", "time": "t2"},
    ]
    assert out["tags"] == ["graph:step:3", "seq:step:1"]
    metadata = out["extra"]["metadata"]
    assert out["extra"].keys() == {"metadata"}
    assert metadata["thread_id"].startswith("thread:") and EMAIL not in metadata["thread_id"]
    assert metadata == {
        "thread_id": metadata["thread_id"],
        "langgraph_node": "respond",
        "langgraph_step": 5,
        "langgraph_triggers": ["branch:to:respond"],
        "ls_temperature": 0.2,
    }
    assert out["serialized"] == {"id": ["app", "llm", "offline", "ExtractiveAnswerer"]}
    assert EMAIL not in repr(out) and "pass@" not in repr(out)


def test_model_runs_keep_the_model_and_token_counts() -> None:
    reply = AIMessage(
        content=f"Write to {EMAIL}.",
        response_metadata={"model_name": "qwen@http://user:secret@llm:8000/v1"},
        usage_metadata={"input_tokens": 96, "output_tokens": 10, "total_tokens": 106},
        tool_calls=[{"name": "send_email", "args": {"to": EMAIL}, "id": "c1"}],
    )
    outputs = LLMResult(generations=[[ChatGeneration(message=reply)]]).model_dump()
    outputs["generations"][0][0]["message"] = dumpd(reply)  # as LangChain's tracer does
    out = redact_run({"name": "ChatOpenAI", "run_type": "llm", "outputs": outputs})
    assert out["outputs"] == {
        "served_by": "qwen@http://llm:8000/v1",
        "tokens_in": 96,
        "tokens_out": 10,
        "tool_calls": 1,
    }


def test_tool_and_node_runs_keep_what_their_spans_keep() -> None:
    failed = ToolMessage(content=f"no mailbox {EMAIL}", tool_call_id="c1", status="error")
    tool = redact_run({"name": "send_email", "run_type": "tool", "outputs": {"output": failed}})
    assert tool["outputs"] == {"outcome": "error"}
    update = {"sources": [{"text": "document text"}] * 2, "degraded": []}
    assert redact_run({"name": "retrieve", "run_type": "chain", "outputs": update})["outputs"] == {
        "hits": 2
    }
    # A shape the summaries don't know (messages as plain dicts) gives nothing, not an error.
    odd = {"messages": [{"type": "tool", "content": EMAIL}]}
    assert redact_run({"name": "execute_tools", "outputs": odd})["outputs"] == {}


def test_langsmith_is_left_alone_unless_configured() -> None:
    assert not langsmith_requested({})
    assert not langsmith_requested({"LANGSMITH_TRACING": "false"})
    assert langsmith_requested({"LANGCHAIN_TRACING_V2": "true"})
    assert langsmith_requested({"LANGSMITH_API_KEY": "lsv2-x"})
    assert setup_langsmith(ObservabilitySettings(), env={}) is None

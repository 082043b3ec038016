"""The client's response_format: schema bounds, reply checks, the offline answerer's JSON."""

from __future__ import annotations

import json
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from app.llm.json_schemas import MAX_SCHEMA_BYTES, schema_problem
from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.response_format import ReplyError, conforming, offline_fill, offline_problem

ONE_STRING = {
    "type": "json_schema",
    "json_schema": {
        "name": "a",
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "title": "Answer"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}


def test_schemas_are_bounded_in_size_and_depth() -> None:
    assert schema_problem({"type": "object"}) is None
    big = {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}
    assert "bytes" in (schema_problem(big) or "")
    deep: dict[str, object] = {"type": "string"}
    for _ in range(30):
        deep = {"type": "array", "items": deep}
    assert "nests deeper" in (schema_problem(deep) or "")
    assert "not a valid JSON Schema" in (schema_problem({"type": "strin"}) or "")


def test_references_stay_within_the_schema() -> None:
    remote = {"properties": {"a": {"$ref": "http://127.0.0.1:9/a.json"}}}
    assert "only references within the schema" in (schema_problem(remote) or "")
    assert "points nowhere" in (schema_problem({"$ref": "#/$defs/missing"}) or "")
    anchored = {"$defs": {"n": {"$anchor": "node", "type": "object"}}, "$ref": "#node"}
    assert schema_problem(anchored) is None
    recursive = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    assert schema_problem(recursive) is None
    with pytest.raises(ReplyError, match="next/next"):
        conforming('{"next": {"next": 1}}', {"type": "json_schema", "json_schema": {
            "name": "r", "schema": recursive}})  # fmt: skip


def test_a_catastrophic_pattern_is_cut_off_not_run_to_the_end() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a|aa)+$"}}}
    reply = json.dumps({"a": "a" * 40 + "!"})
    started = time.monotonic()
    with pytest.raises(ReplyError, match="took too long"):
        conforming(reply, {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})
    assert time.monotonic() - started < 5


def test_conforming_takes_a_fenced_object_and_refuses_the_rest() -> None:
    assert conforming('```json\n{"answer": "x"}\n```', ONE_STRING) == '{"answer": "x"}'
    with pytest.raises(ReplyError, match="not JSON"):
        conforming("The answer is x.", {"type": "json_object"})
    with pytest.raises(ReplyError, match="not an object"):
        conforming("[1, 2]", {"type": "json_object"})
    with pytest.raises(ReplyError, match="answer"):
        conforming('{"other": 1}', ONE_STRING)


def test_the_offline_answerer_fills_what_it_can() -> None:
    assert json.loads(offline_fill("It is 4. [S1]", {"type": "json_object"})) == {
        "answer": "It is 4. [S1]"
    }
    assert json.loads(offline_fill("x", ONE_STRING)) == {"answer": "x"}
    assert offline_problem(ONE_STRING) is None
    two = {"type": "json_schema", "json_schema": {"name": "b", "schema": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["a", "n"],
    }}}  # fmt: skip
    assert offline_problem(two) is not None and offline_fill("x", two) == "x"

    answerer = ExtractiveAnswerer()
    sources = "<sources>\n[S1] a.md\nThe staging cluster is rebuilt every Tuesday.\n</sources>"
    reply = answerer.invoke(
        [SystemMessage(sources), HumanMessage("When is the staging cluster rebuilt?")],
        response_format=ONE_STRING,
    )
    assert "Tuesday" in json.loads(reply.text)["answer"]

"""Chat turns for the API: a request becomes a turn, an answer becomes OpenAI's shapes.

A streamed turn yields ``chat.completion.chunk`` events: the role, content deltas as
the model writes (already through the output checks: redacted, and cut short by a
refusal when the reply repeats the system prompt), then a last chunk with
``finish_reason`` that carries the extensions (``citations``, ``refused``;
``approvals`` and ``tool_calls`` when the run waits; ``final_content`` when the final
answer differs from the streamed text), an optional usage chunk, and ``[DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from app import prompts
from app.context import Context
from app.llm.response_format import instruction
from app.resources import Resources
from app.server.answer_format import (
    citation_format_of,
    requested_format,
    shown_content,
    url_citations,
    usage,
)
from app.server.auth import Principal
from app.server.client_tools import ToolResults, offer, tool_results
from app.server.errors import ApiError, error_body
from app.server.runs.streams import DONE
from app.server.schemas import ChatRequest
from app.turns import Answer, Token, new_thread_id

__all__ = ["Turn", "completion", "prepare_turn", "stream_chunks"]


@dataclass(kw_only=True)
class Turn:
    """One request's turn, ready to run."""

    thread_id: str
    question: str
    context: Context
    model: str
    continues: bool
    """The client named an existing conversation (``conversation_id``)."""
    response_format: dict[str, Any] | None = None
    """The JSON format the answer must have (``json_object`` or ``json_schema``)."""
    citation_format: str = "markers"
    """How the answer shows its sources (:mod:`app.server.answer_format`)."""
    history: list[BaseMessage] = field(default_factory=list)
    """Earlier messages of a new conversation, written to its thread first."""
    results: ToolResults | None = None
    """The caller's results of client tool calls, which the turn resumes the run with."""
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def prepare_turn(
    body: ChatRequest, principal: Principal, resources: Resources, max_chars: int
) -> Turn:
    """Check a request and build its turn.

    A request whose messages end with ``tool`` results continues the run that called
    those client tools (:mod:`app.server.client_tools`).

    Raises:
        ApiError: 400 for a request that cannot be a turn (``context_length_exceeded``, as
            OpenAI says it, for a message longer than ``max_chars``).
    """
    offered = offer(body, resources.tools.names)
    results = tool_results(body, max_chars)
    question = _question(body, max_chars) if results is None else ""
    response_format = requested_format(body, resources)
    system = [m.text() for m in body.messages if m.role in {"system", "developer"} and m.text()]
    if sum(map(len, system)) > max_chars:
        raise ApiError(
            400,
            f"system messages are longer than {max_chars} characters",
            "context_length_exceeded",
            param="messages",
        )
    if response_format is not None:
        system.append(instruction(response_format).strip())
    history: list[BaseMessage] = []
    if body.conversation_id is None and results is None:
        for message in body.messages[:-1]:
            if message.role == "user" and message.text():
                history.append(HumanMessage(content=message.text()))
            elif message.role == "assistant" and message.text():
                history.append(AIMessage(content=message.text()))
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    retrieval = body.retrieval
    context = Context(
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        acl_groups=list(principal.groups),
        system_prompt=prompts.with_instructions(system),
        namespace=retrieval.namespace if retrieval else None,
        hybrid=retrieval.hybrid if retrieval else True,
        top_k=retrieval.top_k if retrieval else None,
        top_n=retrieval.top_k if retrieval else None,
        tools=offered.tools,
        client_tools=offered.client_tools,
        tool_choice=offered.tool_choice,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stops,
        seed=body.seed,
        cache=body.cache != "bypass",
        response_format=response_format,
    )
    return Turn(
        thread_id=results.thread_id if results else body.conversation_id or new_thread_id(),
        question=question,
        context=context,
        model=body.model,
        continues=body.conversation_id is not None or results is not None,
        history=history,
        response_format=response_format,
        citation_format=citation_format_of(body, resources),
        results=results,
    )


def _question(body: ChatRequest, max_chars: int) -> str:
    """The text of the user message that ends the request.

    Raises:
        ApiError: 400 when the messages end otherwise or it is empty, 413 when too long.
    """
    last = body.messages[-1]
    if last.role != "user":
        raise ApiError(
            400,
            "the last message must be from the user, or tool results; to decide tool calls "
            "a run waits to approve, use POST /v1/threads/{conversation_id}/resume",
            "last_message_not_user",
            param="messages",
        )
    question = last.text()
    if not question.strip():
        raise ApiError(
            400, "messages: the last user message is empty", "empty_message", param="messages"
        )
    if len(question) > max_chars:
        raise ApiError(
            400,
            f"the message is longer than {max_chars} characters",
            "context_length_exceeded",
            param=f"messages[{len(body.messages) - 1}].content",
        )
    return question


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    """The calls a paused run waits on: server tools to approve, or the caller's own."""
    waiting = [(a["id"], a["tool"], a["args"]) for a in answer.approvals]
    waiting += [(c["id"], c["name"], c["args"]) for c in answer.client_calls]
    return [
        {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for call_id, name, args in waiting
    ]


def _extensions(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {"citations": answer.citations, "refused": answer.refused}
    if answer.approvals:
        out["approvals"] = answer.approvals
    if answer.degraded:
        out["degraded"] = answer.degraded
    if answer.cache:
        out["cache"] = answer.cache
    return out


def completion(turn: Turn, answer: Answer) -> dict[str, Any]:
    """Return the ``chat.completion`` of an answer."""
    calls = _tool_calls(answer)
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI's content is null beside tool calls when the model wrote no text.
        "content": None if answer.client_calls and not answer.answer else answer.answer,
        "refusal": answer.answer if answer.refused else None,
        **_extensions(answer),
    }
    if calls:
        message["tool_calls"] = calls
    _show(message, turn, answer)
    return {
        "id": turn.completion_id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(answer),
        "conversation_id": answer.thread_id,
    }


def _show(message: dict[str, Any], turn: Turn, answer: Answer) -> None:
    """Put the content as shown (JSON checked, sources footer) and its annotations.

    Raises:
        ApiError: 502 when a JSON format's answer does not conform.
    """
    if message["content"] is None:
        return
    message["content"] = shown_content(answer, turn.response_format, turn.citation_format)
    if turn.citation_format == "annotations":
        message["annotations"] = url_citations(message["content"], answer)


async def stream_chunks(
    turn: Turn,
    events: AsyncIterator[Token | Answer],
    *,
    include_usage: bool,
    on_answer: Callable[[Answer], Awaitable[None]],
    on_token: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    """Turn a run's tokens and answer into the JSON of each SSE event, ending with DONE.

    ``on_token`` is called once, when the first content token arrives.
    """
    base = {
        "id": turn.completion_id,
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.model,
        "conversation_id": turn.thread_id,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return json.dumps({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    streamed, message_id = "", ""
    answer = Answer(answer="")
    async for event in events:
        if isinstance(event, Answer):
            answer = event
            continue
        if turn.response_format is not None:
            continue  # JSON goes out whole, once checked
        if event.restart:  # another model starts over; the final text says what counts
            message_id = event.message_id
            continue
        text = event.text
        if (event.message_id != message_id or event.refusal) and streamed:
            text = "\n\n" + text
        message_id = event.message_id
        if on_token is not None and text and not streamed:
            on_token()
        streamed += text
        yield chunk({"content": text})
    try:
        shown = shown_content(answer, turn.response_format, turn.citation_format)
    except ApiError as exc:  # the stream has begun: the error is its last event
        yield json.dumps(error_body(exc.message, exc.kind, exc.code, exc.param))
        await on_answer(answer)
        yield DONE
        return
    delta: dict[str, Any] = _extensions(answer)
    if shown.startswith(streamed):
        # e.g. the message of a paused run, which no model streamed, or the sources footer
        rest = shown[len(streamed) :]
        if rest:
            yield chunk({"content": rest})
    else:  # the output checks changed the text (a refusal, unknown labels, size cap)
        delta["final_content"] = shown
    if turn.citation_format == "annotations":
        delta["annotations"] = url_citations(shown, answer)
    if answer.refused:
        delta["refusal"] = answer.answer
    calls = _tool_calls(answer)
    if calls:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
    yield chunk(delta, "tool_calls" if calls else "stop")
    if include_usage:
        yield json.dumps({**base, "choices": [], "usage": usage(answer)})
    await on_answer(answer)
    yield DONE

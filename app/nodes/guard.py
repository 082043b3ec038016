"""Input and output guards: size limits, PII, prompt injection, citation stitching."""

from __future__ import annotations

import re
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from app import prompts
from app.context import Context
from app.llm.response_format import is_json, repaired
from app.nodes.respond import decoding_kwargs
from app.nodes.route import answers_directly, standalone_query
from app.observability.metrics import count_rag_answer, count_redactions, count_safety_block
from app.resources import aget_resources
from app.safety import detect_injection, redact
from app.safety.leak import leak_check
from app.settings import LLMSettings
from app.state import AgentState, Citation
from app.text.attribution import attribute
from app.text.intents import needs_context

__all__ = [
    "after_guard",
    "checked",
    "cites_by_support",
    "early_query",
    "guard_input",
    "guard_output",
    "is_refusal",
]

_LABEL = re.compile(r"\[S(\d+)\]")
_REFUSAL = re.compile(r"\bI (?:don't|do not|can't|cannot) (?:know|help)\b", re.IGNORECASE)


def is_refusal(text: str) -> bool:
    """Return whether an answer declines to answer ("I don't know", "I can't help")."""
    return bool(_REFUSAL.search(text[:300]))


def early_query(question: str) -> str | None:
    """Return a new turn's retrieval query when the question alone decides it, else None.

    The query that :func:`guard_input` will prefetch (redacted, standalone), known before
    the graph starts when the question passes the guard, does not go direct and needs no
    earlier turn. The caller may start embedding it then. The length limit is the
    caller's to check.
    """
    if not question.strip() or detect_injection(question):
        return None
    clean, _ = redact(question)
    if answers_directly(clean) or needs_context(clean):
        return None
    return clean


async def guard_input(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Reset per-turn state, then block oversized or injected input and scrub PII.

    A blocked message is replaced in the history by a marker, so neither a huge
    payload nor an injection attempt reaches the model in later turns.
    """
    resources = await aget_resources()
    limits = resources.settings.limits
    update: dict[str, Any] = {
        "sources": "delete",
        "citations": [],
        "memories": [],
        "tool_steps": 0,
        "refused": False,
        "blocked": "",
        "degraded": [],
        "query": "",
        "cache": "",
    }
    last = state.messages[-1] if state.messages else None
    if not isinstance(last, HumanMessage):
        reason = "the last message must come from the user"
    else:
        text = last.text
        if not text.strip():
            reason = "the message is empty"
        elif len(text) > limits.max_input_chars:
            reason = f"the message is longer than {limits.max_input_chars} characters"
            count_safety_block("input_too_long")
        else:
            reason = detect_injection(text) or ""
            if reason:
                count_safety_block("input_injection")
        if not reason:
            clean, kinds = redact(text)
            if kinds:
                count_redactions("input", kinds)
                update["messages"] = [HumanMessage(content=clean, id=last.id)]
            if not answers_directly(clean):
                # Start the query embedding now: it overlaps memory recall, routing and
                # the steps between nodes, and retrieve finds it done or in flight.
                cleaned = [*state.messages[:-1], HumanMessage(content=clean)]
                resources.retriever.prefetch(standalone_query(cleaned))
            return update
    marker = HumanMessage(content=f"[message blocked: {reason}]", id=last.id if last else None)
    refusal = AIMessage(content=prompts.BLOCKED_INPUT.format(reason=reason))
    return {**update, "blocked": reason, "refused": True, "messages": [marker, refusal]}


def after_guard(state: AgentState) -> Literal["load_memory", "__end__"]:
    """End the run at once when the input was blocked."""
    return "__end__" if state.blocked else "load_memory"


def _stitch(text: str, state: AgentState) -> tuple[str, list[Citation]]:
    by_label = {s["label"]: s for s in state.sources}
    citations: dict[str, Citation] = {}

    def keep(match: re.Match[str]) -> str:
        label = f"S{match.group(1)}"
        source = by_label.get(label)
        if source is None:
            return ""  # a label that maps to no retrieved chunk is dropped, never shown
        citations.setdefault(
            label,
            Citation(
                label=label,
                source=source["source"],
                doc_id=source["doc_id"],
                chunk_id=source["chunk_id"],
                span=list(source["span"]),
            ),
        )
        return match.group(0)

    stitched = _LABEL.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", stitched).strip(), list(citations.values())


def cites_by_support(llm: LLMSettings, ctx: Context) -> bool:
    """Whether the answer's citations are checked against the sources (``llm.check_citations``).

    ``auto`` checks them for a local model (``llm.local_gguf``): small models seldom cite,
    or cite the wrong source. Never for a JSON ``response_format``, whose text is data.
    """
    mode = llm.check_citations
    on = mode == "on" or (mode == "auto" and llm.local_gguf is not None)
    return on and ctx.response_format is None


def checked(text: str, prompt: str) -> str:
    """Return a reply as it may be shown: PII and secrets redacted, a prompt leak refused.

    Args:
        text: The model's reply.
        prompt: The run's system prompt, which the reply must not repeat.
    """
    return _checked(text, prompt, set())


def _checked(text: str, prompt: str, found: set[str]) -> str:
    """:func:`checked`, adding what it redacted (PII kinds) or refused (``leak``) to ``found``."""
    text, kinds = redact(text)
    found.update(kinds)
    if leak_check(prompt).leaks(text):
        found.add("leak")
        return prompts.LEAKED_PROMPT
    return text


def _count_output_blocks(found: set[str]) -> None:
    """Count a turn's output-guard actions once per class (a reply may hold many)."""
    count_redactions("output", found - {"leak"})
    if "leak" in found:
        count_safety_block("output_prompt_leak")


def _earlier_replies(state: AgentState, prompt: str, found: set[str]) -> list[AIMessage]:
    """This turn's replies before the last (those that called tools), checked like it.

    They were streamed and stay in the thread's history, which the API shows.
    """
    checked_replies = []
    for message in reversed(state.messages[:-1]):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and message.text:
            text = _checked(message.text, prompt, found)
            if text != message.text:
                checked_replies.append(message.model_copy(update={"content": text}))
    return checked_replies


async def _conformed(state: AgentState, ctx: Context, reply: AIMessage) -> AIMessage:
    """The reply, or the model's one repair of it when it breaks the client's JSON format.

    The repair call sees the question and the reply (no sources: it only rewrites).
    """
    response_format = ctx.response_format
    if response_format is None or not is_json(response_format):
        return reply
    question = next((m for m in reversed(state.messages) if isinstance(m, HumanMessage)), None)
    model = (await aget_resources()).model_for(state.tier).model
    prompt = [
        SystemMessage(content=ctx.system_prompt.format(now="")),
        *([question] if question is not None else []),
    ]
    options = {
        key: value for key, value in decoding_kwargs(ctx).items() if key != "response_format"
    }
    return await repaired(model, prompt, reply, response_format, stop=ctx.stop or None, **options)


async def guard_output(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Finalise the answer: conform to JSON, stop dangling tool calls, redact, cap, cite.

    A reply that breaks the client's ``response_format`` gets one repair
    (:func:`~app.llm.response_format.repaired`). An answer that repeats the system
    prompt becomes a refusal. A streamed answer went through the same checks piece by
    piece (:mod:`app.safety.reply`).

    Counts, once per turn, what the guard redacted or refused (``ragent_safety_blocks_total``)
    and, for a retrieval turn, whether its answer cites a source (``ragent_rag_answers_total``;
    a turn the answer cache serves is counted by :func:`~app.nodes.cache.lookup_answer`).
    """
    resources = await aget_resources()
    limits = resources.settings.limits
    prompt = runtime.context.system_prompt
    found: set[str] = set()
    last = state.messages[-1]
    if isinstance(last, AIMessage) and not last.tool_calls:
        last = await _conformed(state, runtime.context, last)
    if isinstance(last, AIMessage) and last.tool_calls:
        text = (
            f"I stopped after {state.tool_steps} tool steps, the limit for one request, "
            "before reaching an answer."
        )
    else:
        text = _checked(last.text, prompt, found)
        if state.sources and cites_by_support(resources.settings.llm, runtime.context):
            sources = [(s["label"], s["text"]) for s in state.sources]
            text = attribute(text, sources).text or prompts.DONT_KNOW
    if len(text) > limits.max_output_chars:
        text = text[: limits.max_output_chars].rstrip() + " [truncated]"
    text, citations = _stitch(text, state)
    final = AIMessage(
        content=text,
        id=last.id,
        response_metadata=getattr(last, "response_metadata", {}),
        usage_metadata=getattr(last, "usage_metadata", None),
    )
    messages = [*_earlier_replies(state, prompt, found), final]
    refused = is_refusal(text)
    _count_output_blocks(found)
    if state.route == "rag":
        count_rag_answer(cited=bool(citations), refused=refused, cache_hit=False)
    return {"messages": messages, "citations": citations, "refused": refused}

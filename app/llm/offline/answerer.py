"""An offline, deterministic, grounded chat model that stands in for an LLM.

:class:`ExtractiveAnswerer` answers by quoting the sentences of the retrieved sources
(the ``<sources>`` block that the respond node writes into the system message) that best
match the question, each followed by its ``[S<n>]`` label. A question about the user
that a recalled memory answers is answered from the memory instead
(:mod:`app.llm.offline.memory_answers`). It calls the ``calculator``, ``convert_units``,
``current_time`` and ``create_note`` tools when they are bound and the question needs
them, and turns tool results into plain sentences (:mod:`app.llm.offline.tool_use`). It
needs no network, no randomness and no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from app.llm.offline.memory_answers import answer_from_memories, parse_memories
from app.llm.offline.tool_use import describe_tool_results, plan_tool_calls
from app.llm.response_format import offline_fill
from app.llm.usage import record_call
from app.prompts import DONT_KNOW, SOURCES_CLOSE, SOURCES_OPEN
from app.text.intents import standalone_question
from app.text.sentence_rank import Similarity, rank_sentences
from app.text.small_talk import small_talk_reply

__all__ = ["MODEL_NAME", "ExtractiveAnswerer", "answer_from_sources", "parse_sources"]

MODEL_NAME = "offline-extractive"
"""Value of ``response_metadata["model_name"]`` and of ``_llm_type``."""

_HEADER = re.compile(r"^\[S(\d+)\] (.*)$")


def parse_sources(text: str) -> list[tuple[str, str]]:
    """Parse the ``<sources>`` block(s) of a system prompt.

    Each source starts with a header line ``[S<n>] <where it came from>`` and runs until
    the next header or the closing tag. Text before the first header is ignored.

    Args:
        text: The system message text.

    Returns:
        ``(label, text)`` pairs such as ``("S1", "WAL mode ...")`` in order, the text
        stripped of surrounding whitespace; empty when there is no sources block.
    """
    sources: list[tuple[str, str]] = []
    pos = 0
    while (start := text.find(SOURCES_OPEN, pos)) >= 0:
        body_start = start + len(SOURCES_OPEN)
        end = text.find(SOURCES_CLOSE, body_start)
        end = len(text) if end < 0 else end
        pos = end + len(SOURCES_CLOSE)
        label: str | None = None
        lines: list[str] = []
        for line in text[body_start:end].splitlines():
            header = _HEADER.match(line)
            if header is None:
                lines.append(line)
                continue
            if label is not None:
                sources.append((label, "\n".join(lines).strip()))
            label, lines = f"S{header.group(1)}", []
        if label is not None:
            sources.append((label, "\n".join(lines).strip()))
    return sources


def answer_from_sources(
    question: str,
    sources: Sequence[tuple[str, str]],
    *,
    min_relevance: float = 0.3,
    max_sentences: int = 3,
    similarity: Similarity | None = None,
) -> str:
    """Answer a question by quoting the most relevant source sentences with their labels.

    See :func:`app.text.sentence_rank.rank_sentences` for how sentences are chosen.

    Args:
        question: The user's question.
        sources: ``(label, text)`` pairs as returned by :func:`parse_sources`.
        min_relevance: The lowest score (0 to 1) a sentence may have to be quoted.
        max_sentences: The most sentences to quote.
        similarity: Optional semantic scorer (the local embedder): orders the sentences
            by meaning too, and admits one that says what the question asks in other words.

    Returns:
        ``"<sentence> [S<n>] <sentence> [S<m>]"``, best first, or ``DONT_KNOW`` when no
        sentence qualifies.
    """
    ranked = rank_sentences(question, sources, min_relevance, max_sentences, similarity)
    return " ".join(f"{text.rstrip()} [{label}]" for label, text in ranked) or DONT_KNOW


def _words(text: str) -> int:
    # Token counts are approximated by whitespace-separated words: there is no tokenizer
    # offline, and the numbers only feed usage reporting.
    return len(text.split())


class ExtractiveAnswerer(BaseChatModel):
    """A deterministic, offline chat model that answers only from its inputs.

    It reads the ``<sources>`` block of the system messages, the last human message and
    any trailing tool results, and never invents anything: it quotes source sentences
    with their labels, calls bound tools, restates tool results, or says ``DONT_KNOW``.

    Attributes:
        min_relevance: Lowest score (0 to 1) a source sentence needs to be quoted.
        max_sentences: Most source sentences quoted in one answer.
        tool_names: Names of the tools bound with :meth:`bind_tools`; empty means the
            model never emits tool calls.
        similarity: Optional semantic scorer (the local embedder) that orders the
            sentences by meaning and admits paraphrases of the question.
    """

    min_relevance: float = 0.3
    max_sentences: int = 3
    tool_names: tuple[str, ...] = ()
    similarity: Similarity | None = Field(default=None, exclude=True)

    @property
    def _llm_type(self) -> str:
        return MODEL_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": MODEL_NAME,
            "min_relevance": self.min_relevance,
            "max_sentences": self.max_sentences,
        }

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> ExtractiveAnswerer:
        """Return a copy of the model that may call the given tools.

        Only the tool names matter: the model knows how to call ``calculator``,
        ``convert_units``, ``current_time`` and ``create_note`` and never calls any other
        tool.

        Args:
            tools: Tools as ``BaseTool`` objects, OpenAI-format dicts or callables.
            tool_choice: ``"none"`` binds nothing; the name of a bound tool binds only
                that tool; anything else binds them all.
            **kwargs: Accepted for compatibility with other chat models and ignored.

        Returns:
            A new :class:`ExtractiveAnswerer` with ``tool_names`` set.
        """
        names: list[str] = []
        for tool in tools:
            spec = convert_to_openai_tool(tool)
            function = spec.get("function")
            name = function.get("name") if isinstance(function, dict) else spec.get("name")
            if isinstance(name, str):
                names.append(name)
        if tool_choice == "none":
            names = []
        elif tool_choice in names:
            names = [tool_choice]
        return self.model_copy(update={"tool_names": tuple(names)})

    def respond(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> AIMessage:
        """Compute the reply to a conversation; what ``invoke`` and ``stream`` return.

        The call is counted in the turn's usage (:mod:`app.llm.usage`).

        Args:
            messages: System message(s), history and the conversation, oldest first.
            stop: Optional stop sequences; a text answer is cut at the first one.
            response_format: The client's format: a text answer becomes JSON where the
                offline model can write it (:func:`~app.llm.response_format.offline_fill`).

        Returns:
            An ``AIMessage`` with either text content or tool calls, and with
            ``response_metadata`` (``model_name``, ``finish_reason``) and
            ``usage_metadata`` set.
        """
        tool_calls: list[ToolCall] = []
        if messages and isinstance(messages[-1], ToolMessage):
            text = describe_tool_results(messages)
        else:
            last_human = max(
                (i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1
            )
            question = messages[last_human].text if last_human >= 0 else ""
            tool_calls = plan_tool_calls(question, self.tool_names, messages[last_human + 1 :])
            text = "" if tool_calls else self._answer(messages, question, last_human)
        for sequence in stop or []:
            if sequence and sequence in text:
                text = text[: text.index(sequence)]
        if not tool_calls:
            text = offline_fill(text, response_format)
        output_words = _words(text) + sum(_words(json.dumps(c["args"])) + 1 for c in tool_calls)
        input_words = sum(_words(m.text) for m in messages)
        finish: Literal["stop", "tool_calls"] = "tool_calls" if tool_calls else "stop"
        usage = UsageMetadata(
            input_tokens=input_words,
            output_tokens=output_words,
            total_tokens=input_words + output_words,
        )
        record_call(MODEL_NAME, usage)
        return AIMessage(
            content=text,
            tool_calls=tool_calls,
            response_metadata={"model_name": MODEL_NAME, "finish_reason": finish},
            usage_metadata=usage,
        )

    def _answer(self, messages: Sequence[BaseMessage], question: str, last_human: int) -> str:
        """Reply to small talk, else answer from a recalled memory, else from the sources."""
        greeting = small_talk_reply(question)
        if greeting is not None:
            return greeting
        system = [m.text for m in messages if isinstance(m, SystemMessage)]
        memories = [memory for text in system for memory in parse_memories(text)]
        remembered = answer_from_memories(question, memories)
        if remembered is not None:
            return remembered
        return answer_from_sources(
            standalone_question(
                [m.text for m in messages[: last_human + 1] if isinstance(m, HumanMessage)]
            ),
            [source for text in system for source in parse_sources(text)],
            min_relevance=self.min_relevance,
            max_sentences=self.max_sentences,
            similarity=self.similarity,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.respond(messages, stop, kwargs.get("response_format"))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        response_format: Mapping[str, Any] | None = None,
    ) -> Iterator[ChatGenerationChunk]:
        message = self.respond(messages, stop, response_format)
        calls = [
            tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(message.tool_calls)
        ]
        # Split before each whitespace run: the pieces concatenate back to the text exactly.
        # A tool-call reply has no text, so it comes as one chunk.
        pieces = [p for p in re.split(r"(?<=\S)(?=\s)", message.text) if p] or [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    tool_call_chunks=calls if last else [],
                    response_metadata=message.response_metadata if last else {},
                    usage_metadata=message.usage_metadata if last else None,
                    chunk_position="last" if last else None,
                )
            )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # The caller (BaseChatModel.stream / invoke) reports each chunk to run_manager.
        yield from self._chunks(messages, stop, kwargs.get("response_format"))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, stop, kwargs.get("response_format")):
            yield chunk

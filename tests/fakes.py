"""Importable fakes: a scripted tool-calling chat model and a fast deterministic embedder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

_WORD = re.compile(r"\w+")


class ScriptedChatModel(BaseChatModel):
    """Replies with scripted messages in order and records every prompt it was sent.

    Replies may carry ``tool_calls`` to drive the tool loop. Once the script runs out,
    the last reply repeats.
    """

    replies: list[AIMessage]
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    bind_count: list[int] = Field(default_factory=lambda: [0])

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound_tools[:] = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        self.bind_count[0] += 1
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        index = min(len(self.calls), len(self.replies) - 1)
        self.calls.append(list(messages))
        reply = self.replies[index].model_copy()
        return ChatResult(generations=[ChatGeneration(message=reply)])


class HashEmbedder:
    """Bag-of-words vectors hashed into 256 dimensions: fast, deterministic, no model."""

    DIM = 256

    @property
    def model_name(self) -> str:
        return "hash-256"

    @property
    def dim(self) -> int:
        return self.DIM

    @property
    def max_tokens(self) -> int:
        return 512

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.DIM), np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest())
                out[row, bucket % self.DIM] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class RecallingChatModel(BaseChatModel):
    """Answers from what the prompt says it remembers about the user, and records prompts.

    The reply is the remembered line (under "What you remember about the user:") that
    shares the most words with the question, or "Noted." when none shares any.
    """

    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recalling"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RecallingChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        system, question = messages[0].text, messages[-1].text
        _, _, remembered = system.partition("What you remember about the user:\n")
        lines = [x[2:] for x in remembered.split("\n\n")[0].splitlines() if x[:2] == "- "]
        asked = set(_WORD.findall(question.lower()))

        def shared(line: str) -> int:
            return len(asked & set(_WORD.findall(line.lower())))

        best = max(lines, key=shared, default="")
        hit = bool(best) and shared(best) > 0
        reply = AIMessage(best if hit else "Noted.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def small_ingestor(resources: Any) -> Any:
    """The real ingestion pipeline over ``resources``, with small chunks for test corpora."""
    from app.ingest.pipeline import Ingestor

    return Ingestor(
        writer=resources.writer,
        embedder=resources.embedder,
        counter=resources.counter,
        chunk_tokens=200,
        chunk_overlap=20,
        max_file_bytes=100_000,
    )

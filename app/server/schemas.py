"""Request and response models of the API: OpenAI's chat shapes plus ragent's extensions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.retrieval.types import NAMESPACE_PATTERN
from app.server.answer_schemas import Annotation, ModelCallUsage, ResponseFormat

__all__ = [
    "ID_PATTERN",
    "NAMESPACE_PATTERN",
    "ChatCompletion",
    "ChatMessage",
    "ChatRequest",
    "ResumeRequest",
    "RetrievalOptions",
]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class TextPart(BaseModel):
    """A text part of a message's content."""

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; only text content is read. Other OpenAI fields are accepted."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_call_id: str | None = Field(
        default=None, max_length=256, description="With role 'tool': the call it answers."
    )

    def text(self) -> str:
        """The message's text (parts joined)."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's stream options."""

    include_usage: bool = False


class RetrievalOptions(BaseModel):
    """Extension: how this request retrieves."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = Field(
        default=None,
        pattern=NAMESPACE_PATTERN,
        description="Search only this namespace of your tenant (as filled by POST /v1/ingest).",
    )
    top_k: int | None = Field(
        default=None, ge=1, le=20, description="Sources given to the model (default: settings)."
    )
    hybrid: bool = Field(
        default=True, description="Dense and BM25 fused (true), or dense search alone (false)."
    )


TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
"""OpenAI's pattern for function names."""


class FunctionSpec(BaseModel):
    """The function of a tool. For a server tool only its name is read."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=4096)
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the arguments (16 KiB at most)."
    )
    strict: bool | None = None


class ToolSpec(BaseModel):
    """A tool in OpenAI's shape: one of the server's tools by name, or a client tool."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    function: FunctionSpec


class FunctionChoice(BaseModel):
    """The function a named ``tool_choice`` forces."""

    name: str = Field(pattern=TOOL_NAME_PATTERN)


class NamedToolChoice(BaseModel):
    """``tool_choice`` that forces a call to one tool."""

    type: Literal["function"] = "function"
    function: FunctionChoice


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``: OpenAI's request, plus ragent's extensions.

    With ``conversation_id`` the server keeps the history, and only the last (user)
    message is read; without it, a new conversation starts from ``messages``. System
    and developer messages add to the server's system prompt. In ``tools``, a server
    tool's name restricts the run to the server tools named (their definitions are the
    server's own); any other name is a client tool, which the caller runs
    (:mod:`app.server.client_tools`). Messages that end with ``tool`` results continue
    the run that called those client tools. ``tool_choice`` ``"none"`` offers none.
    Identity comes from the API key; ``user`` names an end user only for a key with
    the ``end_users`` scope (:mod:`app.server.end_users`).
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(default="ragent", max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    citation_format: Literal["markers", "footer", "annotations"] | None = Field(
        default=None,
        description="Extension: how the answer shows its sources. markers: [S1] labels "
        "only; footer: a markdown Sources list after the answer (not with JSON formats); "
        "annotations: url_citation annotations on the message. None: server setting.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    n: int | None = Field(
        default=None, json_schema_extra={"minimum": 1, "maximum": 1},
        description="Only one choice is generated: 1 or absent.",
    )  # fmt: skip
    tools: list[ToolSpec] | None = Field(default=None, max_length=64)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    user: str | None = Field(
        default=None,
        description="The end user to act for, with a key of the end_users scope; other "
        "keys get a 400 for any value but their own user.",
    )
    conversation_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Extension: the thread to continue."
    )
    retrieval: RetrievalOptions | None = Field(default=None, description="Extension.")
    cache: Literal["auto", "bypass"] | None = Field(
        default=None,
        description="Extension: 'bypass' answers without the answer cache (neither read "
        "nor written), as the header X-Ragent-Cache: bypass does.",
    )

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError(f"only n=1 is supported (one choice per request), got {value}")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty sequences")
        return value


class ResumeRequest(BaseModel):
    """``POST /v1/threads/{id}/resume``: decide the tool calls a run waits on."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny"] | dict[str, Literal["approve", "deny"]] = Field(
        description="For every waiting call, or per call id; calls not approved are denied."
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description="As in a chat completion request.")


class Citation(BaseModel):
    """A chunk the answer cites."""

    label: str
    source: str
    doc_id: str
    chunk_id: str
    span: list[int]


class ToolCallFunction(BaseModel):
    """The function of a tool call."""

    name: str
    arguments: str


class ToolCall(BaseModel):
    """A tool call waiting for approval."""

    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class Approval(BaseModel):
    """A tool call waiting for approval, with its risk class."""

    id: str
    tool: str
    args: dict[str, Any]
    risk: str


class AssistantMessage(BaseModel):
    """The final message, with citations."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    approvals: list[Approval] | None = Field(
        default=None, description="Present when the run waits: resume it to continue."
    )
    annotations: list[Annotation] | None = Field(
        default=None, description="With citation_format annotations: one per cited label."
    )
    degraded: list[Literal["vector", "keyword"]] | None = Field(
        default=None,
        description="Present when a search engine failed or timed out: the sources come "
        "from the other engine alone.",
    )


class Choice(BaseModel):
    """The one choice."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "tool_calls"]
    logprobs: None = None


class Usage(BaseModel):
    """Model tokens of the turn, summed over every model call, as the models reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: list[ModelCallUsage] = Field(
        default_factory=list, description="Extension: each model call of the turn, in order."
    )


# ragent's own models of OpenAI's shapes, not the openai package's types (which parse these
# responses: the e2e tests read them with its client). Those describe a client's view: in
# the spec they would add fields ragent never sends and leave its extensions untyped.
# bench/openai_schemas.py: openai's ChatCompletion keeps conversation_id, message.citations,
# message.refused and usage.calls only as extras, adds audio, function_call, service_tier,
# system_fingerprint, metadata, moderation and the token details, and its schema has 23
# definitions (13.6 KB) against 10 (6.0 KB).
class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion``, plus ``conversation_id``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    conversation_id: str

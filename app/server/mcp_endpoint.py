"""ragent as an MCP server: ``ask`` and ``search_knowledge`` over streamable HTTP at ``/mcp``.

Built with the MCP SDK's FastMCP, stateless (any worker answers any request) with JSON
responses. ``/mcp`` passes :class:`~app.server.middleware.ApiGuard` like ``/v1``: the
API key names the caller (tenant, user, groups) and its rate limit, body cap and request
timeout apply; nothing in a tool's arguments can change who the caller is. A tool call
with bad arguments, or one the caller may not make, answers ``isError`` with the reason.
"""

# No ``from __future__ import annotations``: FastMCP reads the tools' annotations at runtime.
import json
from typing import Annotated, Any

from mcp.server.fastmcp import Context as McpContext
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import INVALID_PARAMS, PARSE_ERROR, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from app.context import Context
from app.conversations import thread_config
from app.retrieval.types import SearchFilter
from app.server.auth import Principal
from app.server.chat_turns import busy
from app.server.deps import caller, owner_of
from app.server.errors import ApiError
from app.server.runs.recovery import close_interrupted
from app.server.schemas import ID_PATTERN
from app.server.services import Services
from app.server.text import lone_surrogate
from app.settings import Settings
from app.turns import QuestionError, new_thread_id, waiting
from app.turns import ask as ask_turn

__all__ = ["PATH", "McpEndpoint", "build_mcp"]

PATH = "/mcp"

_INSTRUCTIONS = (
    "ragent answers questions from the caller's documents with citations ([S1] labels "
    "that map to the citations list) and searches those documents."
)


class AskResult(BaseModel):
    """The answer to one question, as ``ragent ask --json`` gives it."""

    answer: str
    citations: list[dict[str, Any]]
    thread_id: str
    refused: bool
    approvals: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tool calls the run waits on; a person approves or denies them with "
        "POST /v1/threads/{thread_id}/resume (nothing is approved here).",
    )


class Passage(BaseModel):
    """One passage of the caller's documents."""

    source: str
    doc_id: str
    chunk_id: str
    text: str
    score: float


class SearchResult(BaseModel):
    """Passages for a query, best first."""

    passages: list[Passage]


async def _caller(ctx: McpContext[Any, Any, Request]) -> tuple[Services, Principal]:
    """The services and the caller of the HTTP request behind a tool call.

    The same as a ``/v1`` route's: the key's principal, or the end user a key with the
    ``end_users`` scope names in a header, throttled as such; it needs ``chat``.
    """
    request = ctx.request_context.request
    services = getattr(request.app.state, "services", None) if request is not None else None
    if request is None or not isinstance(services, Services):
        raise ToolError("not authenticated")
    try:
        principal = await caller(request, services)
        principal.require("chat")
    except ApiError as exc:
        raise ToolError(exc.message) from None
    return services, principal


async def _ask(
    services: Services, principal: Principal, question: str, thread_id: str | None
) -> AskResult:
    limit = services.settings.limits.max_input_chars
    context = Context(
        tenant_id=principal.tenant_id, user_id=principal.user_id, acl_groups=list(principal.groups)
    )
    thread = thread_id or new_thread_id()
    try:
        async with busy(services, principal, thread):
            if thread_id:
                if await waiting(services.agent, context=context, thread_id=thread):
                    raise ToolError(
                        f"conversation {thread!r} waits for a decision on tool calls: POST "
                        f"/v1/threads/{thread}/resume first"
                    )
                await close_interrupted(services.agent, thread_config(context, thread))
            await services.quotas.admit(principal)
            await services.threads.touch(owner_of(principal), thread, question)
            answer = await ask_turn(
                services.agent, question, context=context, thread_id=thread, max_chars=limit
            )
        await services.quotas.charge(principal, answer.model_calls)
    except (ApiError, QuestionError) as exc:
        raise ToolError(exc.message if isinstance(exc, ApiError) else str(exc)) from None
    return AskResult(
        answer=answer.answer,
        citations=[dict(c) for c in answer.citations],
        thread_id=answer.thread_id or thread,
        refused=answer.refused,
        approvals=answer.approvals,
    )


def build_mcp(settings: Settings) -> FastMCP[Any]:
    """Build the MCP server with its tools; argument bounds come from ``settings``."""
    server: FastMCP[Any] = FastMCP(
        "ragent",
        instructions=_INSTRUCTIONS,
        stateless_http=True,
        json_response=True,
        log_level="WARNING",
        # Callers authenticate with a bearer key, never a cookie: rebinding a DNS name
        # gains a page nothing, and a server behind a proxy has hosts of its own.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    max_chars = settings.limits.max_input_chars
    max_top_k = settings.mcp.max_top_k

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, openWorldHint=False))
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=max_chars)],
        ctx: McpContext[Any, Any, Request],
        thread_id: Annotated[str | None, Field(pattern=ID_PATTERN)] = None,
    ) -> AskResult:
        """Answer a question from your documents, with citations.

        Args:
            question: The question.
            ctx: The request (injected).
            thread_id: Continue this conversation (from an earlier answer); new if unset.
        """
        services, principal = await _caller(ctx)
        return await _ask(services, principal, question, thread_id)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False))
    async def search_knowledge(
        query: Annotated[str, Field(min_length=1, max_length=min(max_chars, 2000))],
        ctx: McpContext[Any, Any, Request],
        top_k: Annotated[int, Field(ge=1, le=max_top_k)] = 5,
    ) -> SearchResult:
        """Search your documents for passages about a query, best first.

        Args:
            query: What to look for.
            ctx: The request (injected).
            top_k: How many passages to return.
        """
        services, principal = await _caller(ctx)
        flt = SearchFilter(principal.tenant_id, frozenset(principal.groups))
        hits = await services.resources.retriever.search(query, flt, top_n=top_k)
        return SearchResult(
            passages=[
                Passage(
                    source=h.chunk.source,
                    doc_id=h.chunk.doc_id,
                    chunk_id=h.chunk.chunk_id,
                    text=h.chunk.text,
                    score=h.score,
                )
                for h in hits[:top_k]
            ]
        )

    server.streamable_http_app()  # builds the session manager that /mcp hands requests to
    return server


def _invalid_text(body: bytes) -> JSONResponse | None:
    r"""A JSON-RPC error for a body that is not valid Unicode text, else None.

    The SDK reads bytes that are not UTF-8 as an internal error (500), and takes a lone
    surrogate (``"\ud800"`` in JSON) on to the tools, whose tokenizer fails on it.
    Anything else it parses (or refuses) itself.
    """
    request_id: Any = None
    try:
        document = json.loads(body.decode()) if body else None
    except UnicodeDecodeError:
        code, where = PARSE_ERROR, "the body is not UTF-8"
    except ValueError:
        return None
    else:
        found = lone_surrogate(document)
        if found is None:
            return None
        code, where = INVALID_PARAMS, f"{found}: the text holds a lone surrogate (U+D800 to U+DFFF)"
        if isinstance(document, dict) and isinstance(document.get("id"), str | int):
            request_id = document["id"]
    error = {"code": code, "message": f"{where}; send valid Unicode"}
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status_code=400)


class McpEndpoint:
    """The ASGI endpoint at ``/mcp``: hands each request to the app's MCP session manager.

    A body that is not valid Unicode text gets a JSON-RPC error (400), as ``/v1`` answers
    ``invalid_text``: nothing runs.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one MCP request (the middleware has authenticated it)."""
        server: FastMCP[Any] | None = getattr(scope["app"].state, "mcp", None)
        if server is None:
            raise ApiError(404, "the MCP endpoint is off (mcp.serve: false)", "not_found")
        if scope.get("method") == "POST":
            # The body is already capped (ApiGuard); read once here, replayed to the SDK.
            body = await Request(scope, receive).body()
            refusal = _invalid_text(body)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if sent:
                    return await receive()  # a disconnect, as the SDK expects to see it
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay
        await server.session_manager.handle_request(scope, receive, send)

"""OpenAI-compatible chat: ``/v1/chat/completions``, ``/v1/models``, stream replay, ``/v1/ask``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from app.context import Context
from app.conversations import thread_config
from app.server.chat_turns import busy, run_json, run_stream
from app.server.completions import prepare_turn
from app.server.deps import ChatUser, ServicesDep, owner_of
from app.server.errors import BAD_MODEL_OUTPUT, CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.idempotency import idempotent
from app.server.runs.recovery import close_interrupted
from app.server.runs.streams import parse_event_id
from app.server.schemas import ID_PATTERN, ChatCompletion, ChatRequest
from app.server.services import Services
from app.turns import QuestionError, ask, new_thread_id

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["chat"], responses=ERROR_RESPONSES)

_SSE = {
    "description": "With stream=true: chat.completion.chunk events (id: <run id>:<seq>), "
    "then [DONE]",
    "content": {"text/event-stream": {}},
}


async def _replay(services: Services, owner: str, last_event_id: str) -> StreamingResponse:
    run_id, after = parse_event_id(last_event_id)
    if await services.runs.owner(run_id) != owner:
        raise ApiError(404, f"no stream {run_id!r} (unknown, expired or not yours)", "not_found")
    services.metrics.replays.labels("last_event_id").inc()
    return StreamingResponse(
        services.runs.follow(run_id, after),
        media_type="text/event-stream",
        headers={"X-Run-Id": run_id, "Cache-Control": "no-cache"},
    )


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        200: {"model": ChatCompletion, **_SSE},
        **NOT_FOUND,
        **CONFLICT,
        **BAD_MODEL_OUTPUT,
    },
    summary="Answer a conversation turn (OpenAI-compatible, streaming or not)",
)
async def chat_completions(
    body: ChatRequest,
    request: Request,
    services: ServicesDep,
    principal: ChatUser,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    # Left out of the spec, which offers the body's "cache" field for the same choice:
    # listed, it made spec-driven clients (schemathesis) send header values their HTTP
    # library refuses to encode. The route checks it and answers a bad value with a 400.
    cache: Annotated[str | None, Header(alias="X-Ragent-Cache", include_in_schema=False)] = None,
) -> Response:
    """Run one turn with retrieval, tools and citations; see the README's "HTTP API".

    With ``Last-Event-ID`` (``<run id>:<sequence>``), the events of that stream after
    it are sent again; nothing runs. ``X-Ragent-Cache: bypass`` answers without the
    answer cache; an answer served from it says ``"cache": "hit"`` in its message (the
    last chunk's delta when streamed) and, unstreamed, in the header ``X-Ragent-Cache``.
    """
    if last_event_id:
        return await _replay(services, owner_of(principal), last_event_id)
    if cache is not None:
        wanted = cache.strip().lower()
        if wanted not in {"auto", "bypass"}:
            raise ApiError(
                400,
                "X-Ragent-Cache must be 'auto' or 'bypass'",
                "invalid_header",
                param="X-Ragent-Cache",
            )
        if wanted == "bypass":
            body = body.model_copy(update={"cache": "bypass"})
    turn = prepare_turn(
        body, principal, services.resources, services.settings.limits.max_input_chars
    )

    async def produce() -> Response:
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return await run_stream(services, principal, turn, include_usage=usage)
        completion = await run_json(services, principal, turn)
        marker = completion["choices"][0]["message"].get("cache")
        headers = {"X-Ragent-Cache": marker} if marker else None
        return JSONResponse(completion, headers=headers)

    return await idempotent(request, services, principal, produce)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: _SSE, **NOT_FOUND},
    summary="Follow a streamed run again (EventSource-compatible)",
)
async def run_events(
    run_id: Annotated[str, Path(pattern=r"^run_[0-9a-f]{32}$")],
    services: ServicesDep,
    principal: ChatUser,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Send a stream's events from the start, or after ``Last-Event-ID``."""
    return await _replay(services, owner_of(principal), last_event_id or f"{run_id}:0")


class ModelCard(BaseModel):
    """A model, as OpenAI lists them."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "ragent"


class ModelList(BaseModel):
    """OpenAI's model list."""

    object: str = "list"
    data: list[ModelCard]


MODEL = ModelCard(id="ragent")


@router.get("/models", response_model=ModelList, summary="The model name to send")
async def models(principal: ChatUser) -> ModelList:
    """List ``ragent``: the server picks its chat models; any ``model`` value is accepted."""
    return ModelList(data=[MODEL])


@router.get(
    "/models/{model_id}", response_model=ModelCard, responses=NOT_FOUND, summary="One model"
)
async def model(model_id: Annotated[str, Path(max_length=256)], principal: ChatUser) -> ModelCard:
    """Return a model of ``GET /v1/models`` by its id; any other id is a 404."""
    if model_id != MODEL.id:
        raise ApiError(
            404,
            f"The model {model_id!r} does not exist",
            "model_not_found",
            kind="invalid_request_error",  # OpenAI's type for an unknown model
            param="model",
        )
    return MODEL


class AskRequest(BaseModel):
    """A question on an optional thread."""

    question: str = Field(min_length=1)
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)


@router.post("/ask", responses=CONFLICT, summary="Answer in the shape of `ragent ask --json`")
async def ask_route(
    body: AskRequest, request: Request, services: ServicesDep, principal: ChatUser
) -> Any:
    """Answer a question with citations, as ``ragent ask --json`` prints it."""
    limit = services.settings.limits.max_input_chars
    if len(body.question) > limit:
        raise ApiError(413, f"the question is longer than {limit} characters", "message_too_large")
    context = Context(
        tenant_id=principal.tenant_id, user_id=principal.user_id, acl_groups=list(principal.groups)
    )
    thread_id = body.thread_id or new_thread_id()

    async def produce() -> Response:
        try:
            async with busy(services, principal, thread_id):
                if body.thread_id:
                    config = thread_config(context, thread_id)
                    await close_interrupted(services.agent, config)
                await services.quotas.admit(principal)
                if body.question.strip():  # listed before the run, which may die
                    await services.threads.touch(owner_of(principal), thread_id, body.question)
                answer = await ask(
                    services.agent, body.question, context=context, thread_id=thread_id,
                    max_chars=limit,
                )  # fmt: skip
            await services.quotas.charge(principal, answer.model_calls)
        except QuestionError as exc:
            raise ApiError(400, str(exc), "invalid_question", param="question") from None
        return JSONResponse(answer.as_dict())

    return await idempotent(request, services, principal, produce)

"""The HTTP API (minimal here; the HTTP issue adds auth, streaming and the OpenAI surface)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.context import Context
from app.graphs.agent import compile_agent
from app.memory.checkpoint import open_checkpointer
from app.resources import aget_resources
from app.service import QuestionError, ask, new_thread_id
from app.settings import get_settings

__all__ = ["app"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the checkpointer and compile the agent once for the process."""
    settings = get_settings()
    async with open_checkpointer(settings) as saver:
        app.state.agent = compile_agent(saver)
        yield


app = FastAPI(title="ragent", version="0.1.0", lifespan=lifespan)


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    return _error(422, f"{where}: {first['msg']}", "invalid_request_error")


class AskRequest(BaseModel):
    """A question on an optional thread."""

    question: str = Field(min_length=1)
    thread_id: str | None = None


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "code": status}}
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up."""
    return {"status": "ok"}


@app.post("/v1/ask", response_model=None)
async def ask_route(body: AskRequest, request: Request) -> dict[str, Any] | JSONResponse:
    """Answer a question with citations, in the same shape as ``ragent ask --json``."""
    settings = get_settings()
    context = Context(tenant_id=settings.tenant_id, user_id="http")
    try:
        answer = await ask(
            request.app.state.agent,
            body.question,
            context=context,
            thread_id=body.thread_id or new_thread_id(),
            max_chars=settings.limits.max_input_chars,
        )
    except QuestionError as exc:
        return _error(422, str(exc), "invalid_request_error")
    return answer.as_dict()


@app.get("/readyz", response_model=None)
async def readyz() -> dict[str, str] | JSONResponse:
    """Readiness: the configured engines can be built."""
    try:
        await aget_resources()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return _error(503, f"not ready: {type(exc).__name__}", "unavailable")
    return {"status": "ready"}

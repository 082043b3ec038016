"""``ragent ask`` and ``ragent chat``: questions on a thread, replies streamed as they come."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from app.answer import Answer, QuestionError, new_thread_id
from app.cli.approve import DecisionOpt, exit_if_waiting, settle
from app.cli.common import (
    CliError,
    ConfigOpt,
    GroupsOpt,
    JsonOpt,
    MaxTokensOpt,
    SeedOpt,
    StopOpt,
    StreamOpt,
    TemperatureOpt,
    TopPOpt,
    UserOpt,
    make_context,
    open_agent,
    print_answer,
    print_json,
    settings_for,
)
from app.context import Context
from app.settings import Settings

if TYPE_CHECKING:
    from app.cli.common import Agent

__all__ = ["register"]


async def _ask(
    settings: Settings,
    question: str,
    context: Context,
    thread_id: str,
    *,
    stream: bool,
    decision: bool | None = None,
    interactive: bool = False,
) -> Answer:
    async with open_agent(settings) as agent:
        answer = await _turn(agent, settings, question, context, thread_id, stream=stream)
        # A streamed turn printed its first part; each resumed part is printed here.
        return await settle(
            agent,
            answer,
            context=context,
            thread_id=thread_id,
            decision=decision,
            interactive=interactive,
            show=print_answer if stream else (lambda _: None),
        )


async def _turn(
    agent: Agent, settings: Settings, q: str, ctx: Context, thread_id: str, *, stream: bool
) -> Answer:
    """One turn; with ``stream``, the reply is printed token by token, then the sources."""
    from app.observability.tracing import span

    with span("cli.turn"):  # the root span: the turn's node and engine spans share its trace
        return await _run_turn(agent, settings, q, ctx, thread_id, stream=stream)


async def _run_turn(
    agent: Agent, settings: Settings, q: str, ctx: Context, thread_id: str, *, stream: bool
) -> Answer:
    from app.turns import ask, stream_ask

    limit = settings.limits.max_input_chars
    if not stream:
        return await ask(agent, q, context=ctx, thread_id=thread_id, max_chars=limit)
    shown, message_id, answer = "", "", Answer(answer="")
    async for event in stream_ask(agent, q, context=ctx, thread_id=thread_id, max_chars=limit):
        if isinstance(event, Answer):
            answer = event
            continue
        if event.restart and shown:
            sys.stdout.write("\n[the model stopped mid-answer; another model answers]\n")
            shown = ""
        elif (event.message_id != message_id or event.refusal) and shown:
            sys.stdout.write("\n")  # a new reply, or the refusal that stops this one
            shown = ""
        message_id = event.message_id
        sys.stdout.write(event.text)
        sys.stdout.flush()
        shown += event.text
    if " ".join(answer.answer.split()) != " ".join(shown.split()):
        # The output checks changed the reply (unknown labels, size cap); the tokens
        # were redacted and leak-checked as they came.
        sys.stdout.write(f"\n[after output checks]\n{answer.answer}" if shown else answer.answer)
    sys.stdout.write("\n")
    print_answer(answer, shown=True)
    return answer


def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    user: UserOpt = "local",
    groups: GroupsOpt = "",
    as_json: JsonOpt = False,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    stop: StopOpt = None,
    seed: SeedOpt = None,
    stream: StreamOpt = True,
    decision: DecisionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ask one question and print a cited answer, streamed as the model writes it.

    With --json (never streamed): {"answer", "citations": [{"label", "source",
    "doc_id", "chunk_id", "span"}], "thread_id", "refused"}, plus "approvals" when tool
    calls wait for approval (exit code 3; continue with ``ragent resume``).
    """
    if not question.strip():
        raise CliError("the question is empty")
    settings = settings_for(config)
    context = make_context(
        settings,
        user,
        groups,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    thread_id = thread or new_thread_id()
    answer = asyncio.run(
        _ask(
            settings,
            question,
            context,
            thread_id,
            stream=stream and not as_json,
            decision=decision,
            interactive=sys.stdin.isatty() and not as_json,
        )
    )
    if as_json:
        print_json(answer.as_dict())
    else:
        if not (stream and not as_json):
            print_answer(answer)
        typer.echo(f"\n(thread {answer.thread_id})")
    exit_if_waiting(answer, quiet=as_json)


def chat(
    thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
    user: UserOpt = "local",
    groups: GroupsOpt = "",
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    stop: StopOpt = None,
    seed: SeedOpt = None,
    stream: StreamOpt = True,
    decision: DecisionOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Chat interactively on one thread, replies streamed; an empty line or Ctrl-D ends it.

    Tool calls that need approval are asked about (y/N) unless --approve or --deny is given.
    """
    settings = settings_for(config)
    thread_id = thread or new_thread_id()
    context = make_context(
        settings,
        user,
        groups,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
    )
    typer.echo(f"thread {thread_id}; an empty line or Ctrl-D quits")
    asyncio.run(_chat(settings, context, thread_id, stream=stream, decision=decision))


async def _chat(
    settings: Settings,
    context: Context,
    thread_id: str,
    *,
    stream: bool,
    decision: bool | None = None,
) -> None:
    async with open_agent(settings) as agent:
        while True:
            try:
                question = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return
            if not question.strip():
                return
            try:
                answer = await _turn(agent, settings, question, context, thread_id, stream=stream)
            except QuestionError as exc:
                typer.echo(f"ragent: {exc}", err=True)
                continue
            if not stream:
                print_answer(answer)
            await settle(
                agent,
                answer,
                context=context,
                thread_id=thread_id,
                decision=decision,
                interactive=True,
                show=print_answer,
            )


def register(app: typer.Typer) -> None:
    """Add ``ask`` and ``chat`` to the ``ragent`` command."""
    app.command(name="ask")(ask_command)
    app.command()(chat)

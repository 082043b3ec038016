"""Approvals on the command line: ``--approve/--deny``, prompts, and ``ragent resume``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.answer import Answer
from app.cli.common import (
    CliError,
    make_context,
    open_agent,
    print_answer,
    print_json,
    settings_for,
)
from app.context import Context

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from app.state import AgentState, InputState

__all__ = [
    "EXIT_WAITING",
    "DecisionOpt",
    "describe",
    "exit_if_waiting",
    "explain_waiting",
    "register",
    "settle",
]

EXIT_WAITING = 3
"""Exit code of a command that stopped with tool calls waiting for approval."""

DecisionOpt = Annotated[
    bool | None,
    typer.Option(
        "--approve/--deny",
        help="Approve or deny every tool call that needs approval (default: ask on a "
        "terminal, else stop with exit code 3).",
        show_default=False,
    ),
]


def describe(approval: dict[str, Any]) -> str:
    """One line for a waiting call: its tool, risk class and arguments."""
    args = json.dumps(approval["args"], ensure_ascii=False)
    return f"{approval['tool']} ({approval['risk']}) {args}"


async def _ask_user(approvals: list[dict[str, Any]]) -> dict[str, str]:
    choices: dict[str, str] = {}
    for approval in approvals:
        allowed = await asyncio.to_thread(
            typer.confirm, f"Allow {describe(approval)}?", default=False
        )
        choices[approval["id"]] = "approve" if allowed else "deny"
    return choices


async def settle(
    agent: CompiledStateGraph[AgentState, Context, InputState, AgentState],
    answer: Answer,
    *,
    context: Context,
    thread_id: str,
    decision: bool | None,
    interactive: bool,
    show: Callable[[Answer], None],
) -> Answer:
    """Resume a paused run until it ends, deciding by ``decision`` or by asking.

    Each intermediate answer is shown with ``show``. Without a decision and without a
    terminal, the answer that still waits is returned as is.
    """
    while answer.approvals:
        if decision is not None:
            choice: Any = "approve" if decision else "deny"
        elif interactive:
            choice = await _ask_user(answer.approvals)
        else:
            return answer
        from app.turns import resume

        answer = await resume(agent, choice, context=context, thread_id=thread_id)
        show(answer)
    return answer


def explain_waiting(answer: Answer) -> None:
    """Tell, on stderr, what waits for approval and how to continue."""
    for approval in answer.approvals:
        typer.echo(f"ragent: waiting for approval: {describe(approval)}", err=True)
    typer.echo(
        f"ragent: continue with: ragent resume --thread {answer.thread_id} --approve (or --deny)",
        err=True,
    )


def exit_if_waiting(answer: Answer, *, quiet: bool) -> None:
    """End the command with exit code 3 when tool calls still wait for approval.

    Args:
        answer: The run's last answer.
        quiet: Say nothing on stderr (the JSON output lists the waiting calls).

    Raises:
        typer.Exit: Calls wait; unless ``quiet``, they were explained first.
    """
    if answer.approvals:
        if not quiet:
            explain_waiting(answer)
        raise typer.Exit(EXIT_WAITING)


def resume_command(
    thread: Annotated[str, typer.Option(help="The paused thread.", show_default=False)],
    decision: DecisionOpt = None,
    user: Annotated[str, typer.Option("--user", help="The thread's owner.")] = "local",
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated ACL groups.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Settings YAML.")] = None,
) -> None:
    """Approve or deny the tool calls a thread waits on, and finish its run.

    Works from any process: the pending calls live in the thread's checkpoint. Exit
    code 3 when calls still wait (no decision given and no terminal to ask on).
    """
    settings = settings_for(config)
    context = make_context(settings, user, groups)
    interactive = sys.stdin.isatty() and not as_json
    if decision is None and not interactive:
        raise CliError("pass --approve or --deny (no terminal to ask on)")

    async def run() -> Answer:
        from app.turns import waiting as waiting_calls

        async with open_agent(settings) as agent:
            calls = await waiting_calls(agent, context=context, thread_id=thread)
            if not calls:
                raise CliError(f"thread {thread!r} has no tool call waiting for approval")
            if not as_json:
                for approval in calls:
                    typer.echo(f"waiting: {describe(approval)}")
            return await settle(
                agent,
                Answer(answer="", thread_id=thread, approvals=calls),
                context=context,
                thread_id=thread,
                decision=decision,
                interactive=interactive,
                show=(lambda _: None) if as_json else print_answer,
            )

    answer = asyncio.run(run())
    if as_json:
        print_json(answer.as_dict())
    exit_if_waiting(answer, quiet=as_json)


def register(app: typer.Typer) -> None:
    """Add ``resume`` to the ``ragent`` command."""
    app.command(name="resume")(resume_command)

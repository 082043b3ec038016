"""``ragent eval answers``: run datasets through the real agent and score every answer.

Each run gets a temporary data directory. The corpus a dataset names is ingested there
with the real pipeline, under an evaluation tenant of its own; then every question goes
through the compiled graph (:func:`app.turns.ask`) as the evaluation user, with the
configured chat model (the offline answerer by default). Runs that pause for approval
are resumed with a denial, so no write tool ever runs without one.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from langchain_core.language_models import BaseChatModel

from app import prompts
from app.context import Context
from app.conversations import thread_config
from app.evals.aggregate import DatasetResult, Miss, retrieval_scores, summarize
from app.evals.dataset import DatasetConfig, DatasetsConfig, EvalItem, load_items
from app.evals.judge import judge_item
from app.evals.scorers import score_item
from app.evals.textmatch import Similarity
from app.evals.trace import ItemRun, trace_turn
from app.llm.factory import cosine_similarity
from app.llm.offline.answerer import ExtractiveAnswerer
from app.llm.response_format import instruction, offline_problem
from app.resources import Resources, build_resources, use_resources
from app.settings import Settings
from app.tools.catalog import ALL_TOOLS
from app.tools.risk import risk_of
from app.turns import Answer, ask, new_thread_id, resume

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from app.state import AgentState, InputState

    Agent: TypeAlias = CompiledStateGraph[AgentState, Context, InputState, AgentState]

__all__ = ["EVAL_TENANT", "EVAL_USER", "DatasetSpec", "EvalRun", "load_dataset", "run_answers"]

EVAL_TENANT = "ragent-eval"
"""Tenant prefix of evaluation runs; each corpus gets ``ragent-eval.<digest>``."""
EVAL_USER = "ragent-eval"
"""User prefix of evaluation runs; each item acts as ``ragent-eval.<digest of its id>``."""

OnItem = Callable[[str, ItemRun], None]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset file, its items and its config."""

    name: str
    path: Path
    items: list[EvalItem]
    config: DatasetConfig


def load_dataset(path: Path, config: DatasetsConfig) -> DatasetSpec:
    """Read a JSONL dataset and pick its entry of the datasets config (by file name).

    Raises:
        EvalDataError: The file is malformed, or its corpus folder does not exist.
    """
    from app.evals.dataset import EvalDataError

    items = load_items(path)
    entry = config.for_dataset(path.name)
    if entry.corpus is not None and not entry.corpus.is_dir():
        raise EvalDataError(f"{path.name}: corpus folder {entry.corpus} does not exist")
    return DatasetSpec(name=path.name, path=path, items=items, config=entry)


@dataclass
class EvalRun:
    """Every dataset's result, and what was evaluated."""

    datasets: list[DatasetResult]
    model: str
    judge: bool
    """Whether an LLM judge scored the answers (a generative model is configured)."""
    started: str
    seconds: float = 0.0
    ingested: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def misses(self) -> list[Miss]:
        """Every threshold missed, across datasets."""
        return [miss for result in self.datasets for miss in result.misses]

    def as_dict(self) -> dict[str, Any]:
        """The whole run as one JSON-ready object (``--json`` and ``results.json``)."""
        return {
            "model": self.model,
            "judge": self.judge,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "tenant": EVAL_TENANT,
            "user": EVAL_USER,
            "ingested": self.ingested,
            "passed": not self.misses,
            "misses": [m.describe() for m in self.misses],
            "datasets": [result.as_dict() for result in self.datasets],
        }


def _tenant(corpus: Path | None) -> str:
    key = "" if corpus is None else str(corpus.resolve())
    return f"{EVAL_TENANT}.{hashlib.sha256(key.encode()).hexdigest()[:12]}"


async def _turn(
    agent: Agent, item: EvalItem, ctx: Context, limit: int
) -> tuple[Answer, dict[str, Any], list[dict[str, Any]]]:
    thread = new_thread_id()
    answer = await ask(agent, item.question, context=ctx, thread_id=thread, max_chars=limit)
    paused: list[dict[str, Any]] = []
    while answer.approvals:  # never approve: a write tool must not run in an evaluation
        paused += answer.approvals
        answer = await resume(agent, "deny", context=ctx, thread_id=thread)
    snapshot = await agent.aget_state(thread_config(ctx, thread))
    return answer, dict(snapshot.values), paused


def _item_user(item: EvalItem) -> str:
    """The user an item runs as: its own, so no item reads another's memories."""
    return f"{EVAL_USER}.{hashlib.sha256(item.id.encode()).hexdigest()[:12]}"


def _item_context(ctx: Context, item: EvalItem) -> Context:
    """The item's context: its own user, and its JSON schema asked for as a client would.

    Items are independent questions: each runs as a user of its own, since long-term
    memories are per user and a model extracts them from every turn (one item's answer,
    remembered, leaked into the next items' prompts). An item's schema becomes the run's
    ``response_format`` (strict ``json_schema``) and its instruction joins the system
    prompt, as ``/v1/chat/completions`` does.
    """
    ctx = replace(ctx, user_id=_item_user(item))
    if item.json_schema is None:
        return ctx
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": item.json_schema, "strict": True},
    }
    return replace(
        ctx,
        response_format=response_format,
        system_prompt=prompts.with_instructions([instruction(response_format).strip()]),
    )


async def _run_item(
    agent: Agent, resources: Resources, item: EvalItem, ctx: Context, corpus: Path | None
) -> ItemRun:
    started = time.perf_counter()
    risks = {tool.name: risk_of(tool) for tool in ALL_TOOLS}
    ctx = _item_context(ctx, item)
    problem = (
        offline_problem(ctx.response_format)
        if ctx.response_format is not None and isinstance(resources.chat_model, ExtractiveAnswerer)
        else None
    )
    if problem is not None:  # the API refuses such a request with a 400, as here
        return ItemRun(id=item.id, seconds=0.0, error=problem)
    try:
        answer, values, paused = await _turn(
            agent, item, ctx, resources.settings.limits.max_input_chars
        )
    except Exception as exc:  # noqa: BLE001 - one failed item is scored 0, the run goes on
        return ItemRun(
            id=item.id, seconds=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
        )
    return trace_turn(
        item.id,
        answer,
        values,
        corpus=corpus,
        risks=risks,
        approvals=paused,
        seconds=time.perf_counter() - started,
    )


def _ingest(resources: Resources, corpus: Path, tenant: str) -> dict[str, Any]:
    from app.ingest.factory import build_ingestor
    from app.ingest.pipeline import IngestOptions

    options = IngestOptions(
        tenant_id=tenant, workers=resources.settings.ingest.workers, progress=False
    )
    report = build_ingestor(resources).ingest([corpus], options).as_dict()
    return {k: report[k] for k in ("documents", "chunks", "failed", "seconds")}


async def _score(
    spec: DatasetSpec,
    runs: dict[str, ItemRun],
    similarity: Similarity | None,
    judge: BaseChatModel | None,
) -> DatasetResult:
    prompt = Context().system_prompt
    scores = {
        item.id: score_item(item, runs[item.id], similarity=similarity, system_prompt=prompt)
        for item in spec.items
    }
    for qid, values in retrieval_scores(spec.items, runs).items():
        scores[qid].update(values if runs[qid].error is None else dict.fromkeys(values, 0.0))
    if judge is not None:
        for item in spec.items:
            scores[item.id].update(await judge_item(judge, item, runs[item.id]))
    result = DatasetResult(
        name=spec.name,
        items=spec.items,
        runs=runs,
        scores=scores,
        thresholds=dict(spec.config.thresholds),
    )
    return summarize(result)


@dataclass
class _Plan:
    specs: list[DatasetSpec]
    tracing: Callable[[], AbstractContextManager[Any]]
    on_item: OnItem | None


def _model_name(settings: Settings) -> str:
    """The model the report names: the local GGUF file too, when ragent serves one."""
    llm = settings.llm
    if llm.local_gguf is not None:
        return f"{llm.model} (local {llm.local_gguf.name})"
    return llm.model if llm.base_url else "offline-extractive"


async def _run(settings: Settings, plan: _Plan) -> EvalRun:
    from app.graphs.agent import compile_agent
    from app.llm.local.process import alocal_model
    from app.memory.checkpoint import open_checkpointer
    from app.memory.store import open_store

    resources = build_resources(settings)
    judge = resources.chat_model if settings.llm.base_url else None
    run = EvalRun(
        datasets=[],
        model=_model_name(settings),
        judge=judge is not None,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    similarity: Similarity = partial(cosine_similarity, resources.embedder)
    tenants: dict[Path | None, str] = {}
    with use_resources(resources):
        async with (
            alocal_model(settings.llm, settings.data_dir),
            open_checkpointer(settings) as saver,
            open_store(settings, resources.embedder) as store,
        ):
            agent = compile_agent(saver, store)
            try:
                for spec in plan.specs:
                    corpus = spec.config.corpus
                    if corpus not in tenants:
                        tenants[corpus] = _tenant(corpus)
                        if corpus is not None:
                            run.ingested[str(corpus)] = await asyncio.to_thread(
                                _ingest, resources, corpus, tenants[corpus]
                            )
                    ctx = Context(tenant_id=tenants[corpus], user_id=EVAL_USER)
                    runs: dict[str, ItemRun] = {}
                    with plan.tracing():
                        for item in spec.items:
                            runs[item.id] = await _run_item(agent, resources, item, ctx, corpus)
                            if plan.on_item is not None:
                                plan.on_item(spec.name, runs[item.id])
                    run.datasets.append(await _score(spec, runs, similarity, judge))
            finally:
                if resources.models is not None:
                    await resources.models.aclose()
    return run


def run_answers(
    settings: Settings,
    specs: list[DatasetSpec],
    *,
    on_item: OnItem | None = None,
    tracing: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> EvalRun:
    """Run every dataset through the agent in a temporary data directory and score it.

    Args:
        settings: The configuration under evaluation; its ``data_dir`` is not touched.
        specs: The datasets, from :func:`load_dataset`.
        on_item: Called after each item's run (progress).
        tracing: A context manager entered around each dataset's runs (LangSmith tracing).

    Returns:
        The scored run; ``misses`` lists the thresholds it failed.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ragent-eval-") as tmp:
        scoped = settings.model_copy(update={"data_dir": Path(tmp)})
        run = asyncio.run(_run(scoped, _Plan(specs, tracing, on_item)))
    run.seconds = time.perf_counter() - started
    return run

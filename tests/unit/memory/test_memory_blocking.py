"""The store and checkpointer factories make no blocking call on the event loop.

``langgraph dev`` runs with blockbuster, which turns a blocking call made on the event
loop (such as creating the data folder) into an error; these tests run the factories the
same way, each on a data folder that does not exist yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from blockbuster import blockbuster_ctx

from app.memory.checkpoint import open_checkpointer
from app.memory.store import open_store
from app.settings import Settings
from tests.fakes import HashEmbedder

T = TypeVar("T")


@pytest.fixture
def fresh(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"data_dir": tmp_path / "not" / "yet" / "there"})


async def test_open_store_creates_the_data_folder_off_the_event_loop(fresh: Settings) -> None:
    with blockbuster_ctx():
        async with open_store(fresh, HashEmbedder()) as store:
            await store.aput(("memories", "t", "u"), "k", {"text": "The user's name is Ada."})
            found = await store.asearch(("memories", "t", "u"), query="name")
    assert [item.value["text"] for item in found] == ["The user's name is Ada."]
    assert (fresh.data_dir / "memory.sqlite").is_file()


async def test_open_checkpointer_creates_the_data_folder_off_the_event_loop(
    fresh: Settings,
) -> None:
    with blockbuster_ctx():
        async with open_checkpointer(fresh) as saver:
            listed = [c async for c in saver.alist({"configurable": {"thread_id": "x"}})]
    assert listed == []
    assert (fresh.data_dir / "checkpoints.sqlite").is_file()


async def test_recall_hops_to_a_thread_only_to_embed_or_rank(
    fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[str] = []
    real = asyncio.to_thread

    async def counted(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        hops.append(getattr(func, "__name__", "?"))
        return await real(func, *args, **kwargs)

    async with open_store(fresh, HashEmbedder()) as store:
        monkeypatch.setattr(asyncio, "to_thread", counted)
        scope = ("memories", "t", "u")
        assert await store.asearch(scope, query="name") == []
        assert hops == []  # nothing to rank: the plan and the result stay on the loop
        await store.aput(scope, "k", {"text": "The user's name is Ada."})
        assert hops == ["_plan"]  # the put is embedded in a thread
        found = await store.asearch(scope, query="name")
        assert hops == ["_plan", "_finish"]  # found items are ranked in a thread
    assert [item.value["text"] for item in found] == ["The user's name is Ada."]

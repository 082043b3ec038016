"""Start-up objects leave the cyclic collector; start-up garbage is freed, not frozen."""

from __future__ import annotations

import gc
import weakref

from app.startup_gc import freeze_startup_heap


class _Node:
    ref: object = None


def test_the_start_up_heap_is_frozen_after_its_garbage_is_collected() -> None:
    kept = _Node()
    kept.ref = kept  # a cycle that is still in use
    garbage = _Node()
    garbage.ref = garbage  # a cycle nothing refers to: only the collector frees it
    gone = weakref.ref(garbage)
    del garbage
    try:
        frozen = freeze_startup_heap()
        assert gone() is None  # freed first, not kept alive in the frozen generation
        # Frozen objects still die when their last reference goes: threads left by other
        # tests may free a few meanwhile, never add any (only freeze() does).
        assert 0 < gc.get_freeze_count() <= frozen
        # Full collections walk gc.get_objects(); frozen objects are not among them.
        assert not any(obj is kept for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is kept for obj in gc.get_objects())

"""Keep the objects a long-running process loads at start-up out of full garbage collections.

A served process holds a large heap that lives as long as it does: LangGraph, pydantic
models, the engines, the tokenizer, the compiled graph. CPython's cyclic collector walks
every tracked object in a full (generation 2) collection, and it starts one whenever the
objects that survived into that generation have grown by a quarter. On this project's
two-core test machine such a collection took 340 ms of CPU in the middle of a turn, a pause
of the event loop that every request in flight waits out. :func:`freeze_startup_heap`,
called once the process is loaded and warm, moves what exists into the permanent
generation (``gc.freeze``), so later collections only walk what requests allocate. Frozen
objects are never freed by the collector; at start-up they are the process's own
long-lived state, which is meant to stay.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["freeze_startup_heap"]

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then freeze the rest out of later collections.

    Call once, after the engines are built and the models loaded. Calling again freezes
    what was allocated in between, which is harmless.

    Returns:
        How many objects are now frozen.
    """
    gc.collect()  # garbage from loading is freed, not frozen
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("froze %d start-up objects out of garbage collection", frozen)
    return frozen

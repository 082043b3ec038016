"""Append-only float32 rows in fixed-size blocks, so that growing never copies.

A single matrix that doubles when full has to copy every vector it holds, which at a
million 384-dimensional rows stalls the first write after a load for seconds. Blocks
are allocated zeroed (the operating system maps their pages lazily), filled in place
and never moved.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["RowBlocks"]

Matrix = npt.NDArray[np.float32]


class RowBlocks:
    """Rows ``0..capacity-1`` of width ``dim``, stored ``block_rows`` to a block."""

    def __init__(self, dim: int, block_rows: int = 16_384) -> None:
        """Create empty storage.

        Args:
            dim: Row width.
            block_rows: Rows per block: a scan touching a block reads it contiguously.
        """
        self.dim = dim
        self.block_rows = block_rows
        self._blocks: list[Matrix] = []

    @property
    def capacity(self) -> int:
        """Rows that can be written without allocating."""
        return len(self._blocks) * self.block_rows

    def reserve(self, rows: int) -> None:
        """Allocate blocks until ``rows`` rows fit."""
        while self.capacity < rows:
            self._blocks.append(np.zeros((self.block_rows, self.dim), np.float32))

    def __setitem__(self, position: int, row: npt.ArrayLike) -> None:
        """Write one row (its block must be reserved)."""
        block, offset = divmod(position, self.block_rows)
        self._blocks[block][offset] = row

    def _spans(self, start: int, stop: int) -> list[Matrix]:
        views = []
        while start < stop:
            block, offset = divmod(start, self.block_rows)
            take = min(stop - start, self.block_rows - offset)
            views.append(self._blocks[block][offset : offset + take])
            start += take
        return views

    def rows(self, start: int, stop: int) -> Matrix:
        """Rows ``start..stop-1`` as one contiguous array (a view within one block)."""
        views = self._spans(start, stop)
        if not views:
            return np.zeros((0, self.dim), np.float32)
        return views[0] if len(views) == 1 else np.concatenate(views)

    def dot(self, start: int, stop: int, query: Matrix) -> Matrix:
        """``rows(start, stop) @ query``, one matrix-vector product per block, no copy."""
        views = self._spans(start, stop)
        if not views:
            return np.zeros(0, np.float32)
        if len(views) == 1:
            return views[0] @ query
        return np.concatenate([view @ query for view in views])

    def take(self, positions: npt.NDArray[np.intp]) -> Matrix:
        """The rows at ``positions`` (any order), gathered into one array."""
        blocks, offsets = np.divmod(positions, self.block_rows)
        if positions.size and blocks[0] == blocks[-1] and (blocks == blocks[0]).all():
            return self._blocks[int(blocks[0])][offsets]
        out = np.empty((positions.size, self.dim), np.float32)
        for block in np.unique(blocks).tolist():
            where = blocks == block
            out[where] = self._blocks[block][offsets[where]]
        return out

from __future__ import annotations

import numpy as np

from app.retrieval.embedded.row_blocks import RowBlocks


def _filled(n: int, dim: int = 3, block_rows: int = 4) -> tuple[RowBlocks, np.ndarray]:
    blocks = RowBlocks(dim, block_rows=block_rows)
    expected = np.arange(n * dim, dtype=np.float32).reshape(n, dim)
    blocks.reserve(n)
    for i, row in enumerate(expected):
        blocks[i] = row
    return blocks, expected


def test_rows_span_blocks_and_growing_never_moves_written_rows() -> None:
    blocks, expected = _filled(10)
    assert blocks.capacity == 12  # three blocks of four
    first = blocks.rows(0, 4)
    blocks.reserve(100)  # grows by appending blocks: the first block is the same memory
    assert np.shares_memory(first, blocks.rows(0, 4))
    for start, stop in [(0, 10), (3, 9), (4, 8), (5, 6), (7, 7)]:
        np.testing.assert_array_equal(blocks.rows(start, stop), expected[start:stop])


def test_dot_and_take_match_a_single_matrix() -> None:
    blocks, expected = _filled(11)
    query = np.array([0.5, -1.0, 2.0], np.float32)
    for start, stop in [(0, 11), (2, 3), (4, 8), (1, 10)]:
        np.testing.assert_allclose(blocks.dot(start, stop, query), expected[start:stop] @ query)
    assert blocks.dot(5, 5, query).shape == (0,)
    for positions in ([9, 0, 5, 4, 10], [1, 2], [8]):
        picked = np.asarray(positions, np.intp)
        np.testing.assert_array_equal(blocks.take(picked), expected[picked])

"""Hypothesis: proofs read off tiles of every level, one at a time and in runs.

A tree past 2**17 leaves, so that a proof's part below the right edge crosses
level-0, level-1 and level-2 tiles, full and partial; each proof must verify
with the verifier's own bottom-up check against the root of its tree size.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import OutOfRange
from ledger.read.proof_builder import build_inclusion_proof, build_inclusion_proofs
from ledger.tree.compact import merkle_root
from tests.memtree import MemTree
from verifier.proof_check import verify_inclusion

BIG = (1 << 17) + (1 << 16) + 300 + 5
LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BIG)]
TREE = MemTree()
for start, stop in ((0, 1), (1, 70_001), (70_001, 70_300), (70_300, BIG)):
    TREE.append(LEAVES[start:stop])
ROOT = merkle_root(LEAVES)


def _check(indices: list[int], size: int, root: bytes) -> None:
    proofs = list(build_inclusion_proofs(TREE.reader(), indices, size))
    assert len(proofs) == len(indices)
    for index, proof in zip(indices, proofs, strict=True):
        verify_inclusion(index, size, LEAVES[index], proof, root)
        assert proof == build_inclusion_proof(TREE.reader(), index, size)


def test_runs_of_one_tile_and_the_right_edge_verify_at_the_full_size():
    # Whole tiles at levels 0, 1 and 2 of the path, a run crossing a tile's
    # end, the partial tile at the right edge and the last leaf.
    indices = [
        *range(0, 300),
        *range(65_400, 65_700),
        *range(131_000, 131_100),
        *range(196_600, BIG),
    ]
    _check(indices, BIG, ROOT)


def test_indices_out_of_order_and_repeated_still_get_their_own_proofs():
    _check([5, 300, 6, 6, 65_535, 5, BIG - 1, 0, 257, 256], BIG, ROOT)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, BIG), st.data())
def test_any_older_size_and_any_indices_verify(size, data):
    # The tree's tiles stay those of BIG leaves; proofs of an older size need
    # its right edge recomputed from them.
    picks = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=40))
    runs = [i for p in picks[:3] for i in range(p, min(p + 260, size))]
    _check(sorted({*picks, *runs}), size, merkle_root(LEAVES[:size]))


def test_an_index_or_size_beyond_the_tree_is_refused():
    with pytest.raises(OutOfRange):
        list(build_inclusion_proofs(TREE.reader(), [0, 1, BIG], BIG))
    with pytest.raises(OutOfRange):
        list(build_inclusion_proofs(TREE.reader(), [0], BIG + 1))
    with pytest.raises(OutOfRange):
        # A run of one tile, then a leaf of that tile at or past a smaller size.
        list(build_inclusion_proofs(TREE.reader(), [256, 257, 300], 290))

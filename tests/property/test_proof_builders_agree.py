"""Hypothesis: the server's proof builder and the observer's give the same proofs.

The log builds proofs from its stored tiles (``ledger.read.proof_builder``: cached
tile nodes, partial tiles from the writer's state); an observer builds its own
from the tiles the log serves (``verifier.tile_client.TileHashes``). They are written
apart on purpose (the verifier imports nothing of the server), so here they
are held together: for random trees, given the same tiles, every inclusion and
consistency proof is byte for byte the same, and both verify.
"""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrate import TreeState, integrate
from ledger.read.proof_builder import (
    FullTileCache,
    NodeReader,
    build_consistency_proof,
    build_inclusion_proof,
)
from ledger.tree.compact import CompactRange
from tests import oracle
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.tile_client import TileHashes, TileLog
from verifier.tile_format import tile_path


def _leaf(i: int) -> bytes:
    return oracle.leaf(i.to_bytes(8, "big"))


@cache
def _tree(n: int) -> tuple[TreeState, dict[tuple[int, int], bytes]]:
    """The writer's state of an ``n``-leaf tree, and its full tiles' bytes."""
    state, full = integrate(TreeState.empty(), [_leaf(i) for i in range(n)])
    return state, {(t.level, t.index): t.hashes for t in full}


def _root(size: int) -> bytes:
    edge = CompactRange()
    for i in range(size):
        edge.append(_leaf(i))
    return edge.root()


def _served(state: TreeState, full: dict[tuple[int, int], bytes]) -> TileLog:
    """What the log serves for its tree: full tiles and the partial ones."""
    files = {
        tile_path(level, index, 256): data for (level, index), data in full.items()
    }
    for level, hashes in enumerate(state.partials):
        if hashes:
            index = (state.size >> (8 * level)) // 256
            files[tile_path(level, index, len(hashes))] = b"".join(hashes)
    return TileLog(files.__getitem__)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70_000), st.data())
def test_server_and_observer_build_the_same_proofs(n, data):
    state, full = _tree(n)
    server = NodeReader(
        n, state.partials, lambda level, index: full[(level, index)], FullTileCache()
    )
    observer = TileHashes(_served(state, full), n)
    root = state.root
    size = data.draw(st.integers(1, n), label="size")
    sized = _root(size)
    for _ in range(3):
        index = data.draw(st.integers(0, size - 1), label="index")
        path = build_inclusion_proof(server, index, size)
        assert path == observer.inclusion_proof(index, size)
        verify_inclusion(index, size, _leaf(index), path, sized)
    old = data.draw(st.integers(1, size), label="old")
    proof = build_consistency_proof(server, old, size)
    assert proof == observer.consistency_proof(old, size)
    verify_consistency(old, size, _root(old), sized, proof)
    assert observer.root() == root

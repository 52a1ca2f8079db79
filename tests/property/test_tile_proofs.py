"""Hypothesis: proofs an observer builds from a log's tiles are RFC 6962's proofs.

``verifier.tile_client.TileHashes`` reads hash tiles (as any tlog-tiles log serves them)
and builds inclusion and consistency proofs for any tree up to the size the
tiles are for. Here the tiles of random trees are made by the test from the
definition (a level-L tile holds the roots of 256**L-leaf subtrees), served from
memory at exactly the paths and widths the spec fixes (any other path is a
miss), and every proof is compared with the naive recursive oracle
(``tests.oracle``) and verified with ``verifier.proof_check``. One tree of 70,000
leaves covers level-2 tiles.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import oracle
from tests.tilelog import levels
from verifier.errors import MalformedInput
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.tile_client import TileHashes, TileLog
from verifier.tile_format import tile_path


@cache
def _leaves(n: int) -> list[bytes]:
    return [oracle.leaf(i.to_bytes(8, "big") * 4) for i in range(n)]


def _served(n: int) -> tuple[TileLog, list[str]]:
    """A log of ``n`` leaves serving its tiles (for size n) from memory."""
    files = {}
    for level, stored in enumerate(levels(_leaves(n))):
        for index in range(0, len(stored), 256):
            part = stored[index : index + 256]
            files[tile_path(level, index // 256, len(part))] = b"".join(part)
    fetched: list[str] = []

    def fetch(path: str) -> bytes:
        fetched.append(path)
        if path not in files:
            raise KeyError(path)
        return files[path]

    return TileLog(fetch), fetched


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 1300), st.data())
def test_tile_proofs_equal_the_oracle(n, data):
    log, _ = _served(n)
    hashes = TileHashes(log, n)
    leaves = _leaves(n)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(1, size), label="old")
    root = oracle.mth(leaves[:size])
    assert hashes.root(0, size) == root
    path = hashes.inclusion_proof(index, size)
    assert path == oracle.path(index, leaves[:size])
    verify_inclusion(index, size, leaves[index], path, root)
    proof = hashes.consistency_proof(old, size)
    assert proof == (oracle.proof(old, leaves[:size]) if old < size else [])
    verify_consistency(old, size, oracle.mth(leaves[:old]), root, proof)


def test_level_two_tiles_and_partial_widths():
    n = 70_000  # 273 full level-0 tiles, a partial one; level 1 partial; level 2
    log, fetched = _served(n)
    hashes = TileHashes(log, n)
    leaves = _leaves(n)
    assert hashes.root() == oracle.mth(leaves)
    assert hashes.node(16, 0) == oracle.mth(leaves[:65536])
    assert any(p.startswith("tile/2/") for p in fetched)
    for old, new, index in [(65536, 70_000, 69_999), (1, 70_000, 0), (300, 65537, 257)]:
        proof = hashes.consistency_proof(old, new)
        verify_consistency(
            old, new, oracle.mth(leaves[:old]), oracle.mth(leaves[:new]), proof
        )
        path = hashes.inclusion_proof(index, new)
        verify_inclusion(index, new, leaves[index], path, oracle.mth(leaves[:new]))


def test_requests_beyond_the_tree_are_refused():
    log, _ = _served(10)
    hashes = TileHashes(log, 10)
    with pytest.raises(MalformedInput):
        hashes.node(3, 1)  # leaves 8..15 of a tree of 10
    with pytest.raises(MalformedInput):
        hashes.inclusion_proof(10, 10)
    with pytest.raises(MalformedInput):
        hashes.consistency_proof(5, 11)


def test_a_tile_of_the_wrong_length_is_refused():
    def fetch(path: str) -> bytes:
        return b"\x00" * 31

    with pytest.raises(MalformedInput):
        TileHashes(TileLog(fetch), 3).root()

"""Hypothesis: ``entry_prover`` proves exactly the entries the signed tree holds.

Entries in full level-0 tiles are proven through their proven tile, entries at
the right edge through the proven partial tile: for random trees (a partial
edge or none, one tile level or two) every stored entry proves, every other
entry bytes at any position are refused, and an edge or a root that is not the
tree's refuses every entry at the edge, the swapped one included.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import IntegrityFailure
from ledger.integrate import TreeState, integrate
from ledger.read.proof_builder import FullTileCache, NodeReader
from ledger.read.tree import entry_prover
from ledger.tree.tiles import TILE_WIDTH
from tests import oracle
from verifier.rfc6962 import hash_leaf


def _data(i: int) -> bytes:
    return b"entry %d" % i


@cache
def _tree(n: int) -> tuple[TreeState, dict[tuple[int, int], bytes]]:
    state, full = integrate(TreeState.empty(), [hash_leaf(_data(i)) for i in range(n)])
    return state, {(t.level, t.index): t.hashes for t in full}


def _reader(n: int, partials=None) -> NodeReader:
    state, tiles = _tree(n)
    return NodeReader(
        n,
        state.partials if partials is None else partials,
        lambda level, index: tiles[(level, index)],
        FullTileCache(64),
    )


def _root(n: int) -> bytes:
    return oracle.mth([hash_leaf(_data(i)) for i in range(n)])


sizes = st.one_of(
    st.integers(1, 3 * TILE_WIDTH + 5), st.sampled_from([256, 512, 65_536 + 300])
)


@settings(max_examples=60, deadline=None)
@given(sizes, st.data())
def test_every_stored_entry_proves_and_no_other(n, data):
    prove = entry_prover(_reader(n), n, _root(n))
    picks = {0, n - 1, (n // TILE_WIDTH) * TILE_WIDTH % n}
    picks |= set(data.draw(st.lists(st.integers(0, n - 1), max_size=8), "indices"))
    for index in sorted(picks):
        assert prove(index, _data(index)) == hash_leaf(_data(index))
    for index in sorted(picks):
        with pytest.raises(IntegrityFailure, match=f"entry {index} as stored"):
            prove(index, _data(index) + b"!")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2 * TILE_WIDTH + 255).filter(lambda n: n % TILE_WIDTH), st.data())
def test_an_edge_that_is_not_the_trees_proves_none_of_its_entries(n, data):
    state, _ = _tree(n)
    edge = list(state.partials[0])
    swapped = data.draw(st.integers(0, len(edge) - 1), "swapped")
    first = n - len(edge)
    # The swapped leaf is the hash of the bytes offered for it: only the proof
    # of the edge against the signed root can tell it is not the tree's.
    edge[swapped] = hash_leaf(_data(first + swapped) + b"?")
    partials = (tuple(edge), *state.partials[1:])
    prove = entry_prover(_reader(n, partials), n, _root(n))
    index = data.draw(st.integers(first, n - 1), "index")
    offered = _data(index) + (b"?" if index == first + swapped else b"")
    with pytest.raises(IntegrityFailure, match=f"entry {index} as stored"):
        prove(index, offered)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 2 * TILE_WIDTH + 255), st.data())
def test_another_root_proves_no_entry(n, data):
    prove = entry_prover(_reader(n), n, _root(n - 1))
    index = data.draw(st.integers(0, n - 1), "index")
    with pytest.raises(IntegrityFailure):
        prove(index, _data(index))

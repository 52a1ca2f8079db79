"""Hypothesis: the tiled tree and proof builder vs. the naive oracle and verifier."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.errors import OutOfRange
from ledger.read.proof_builder import (
    RunPaths,
    build_consistency_proof,
    build_inclusion_proof,
)
from ledger.tree.compact import CompactRange, merkle_root
from tests import oracle
from tests.memtree import MemTree
from verifier.errors import VerificationError
from verifier.proof_check import verify_consistency, verify_inclusion
from verifier.rfc6962 import hash_children, hash_pairs

MAX = 1100
LEAVES = [oracle.leaf(i.to_bytes(4, "big")) for i in range(MAX)]
ROOTS = [oracle.mth(LEAVES[:n]) for n in range(0, 70)]


def root(n: int) -> bytes:
    return ROOTS[n] if n < len(ROOTS) else merkle_root(LEAVES[:n])


def tree_of(size: int, batches: list[int] | None = None) -> MemTree:
    tree = MemTree()
    pos = 0
    for b in batches or []:
        take = min(b, size - pos)
        tree.append(LEAVES[pos : pos + take])
        pos += take
    tree.append(LEAVES[pos:size])
    return tree


FULL = tree_of(MAX, [1, 255, 1, 300, 7])


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_size_and_index_up_to_1000_verifies():
    # Exhaustive on every size up to 1,000 for a sample of indices per size,
    # and every index for sizes up to 300 (about 45,000 inclusion proofs in all).
    for size in range(1, 1001):
        reader = tree_of(size).reader() if size % 97 == 0 else None
        expected_root = merkle_root(LEAVES[:size])
        indices = range(size) if size <= 300 else {0, 1, size // 2, size - 2, size - 1}
        for index in indices:
            proof = build_inclusion_proof(reader or FULL.reader(), index, size)
            verify_inclusion(index, size, LEAVES[index], proof, expected_root)


@given(st.integers(1, MAX), st.data())
def test_inclusion_matches_oracle_and_verifies(size, data):
    index = data.draw(st.integers(0, size - 1))
    proof = build_inclusion_proof(FULL.reader(), index, size)
    assert proof == oracle.path(index, LEAVES[:size])
    verify_inclusion(index, size, LEAVES[index], proof, merkle_root(LEAVES[:size]))


@given(st.integers(0, MAX - 1), st.data())
def test_run_paths_of_a_commit_match_the_oracle(first, data):
    # The receipts of one commit (leaves [first, size)) are read off shared
    # levels; every one must equal the RFC's PATH and verify.
    size = data.draw(st.integers(first + 1, MAX))
    tree = MemTree()
    tree.append(LEAVES[:first])
    tree.append(LEAVES[first:size])
    # Both ways to the nodes left of the run: the reader (tiles), and the
    # compact range of the first ``first`` leaves, here one root per set bit of
    # ``first``, largest first, each computed from its own slice of leaves.
    edge, start = [], 0
    for bit in reversed(range(first.bit_length())):
        if first >> bit & 1:
            edge.append(merkle_root(LEAVES[start : start + (1 << bit)]))
            start += 1 << bit
    expected_root = merkle_root(LEAVES[:size])
    picks = data.draw(st.lists(st.integers(first, size - 1), min_size=1, max_size=20))
    for paths in (
        RunPaths(tree.reader(), first, LEAVES[first:size]),
        RunPaths(tree.reader(), first, LEAVES[first:size], edge),
    ):
        for index in {first, size - 1, *picks}:
            proof = list(paths.path(index))
            assert proof == oracle.path(index, LEAVES[:size])
            verify_inclusion(index, size, LEAVES[index], proof, expected_root)
        with pytest.raises(OutOfRange):
            paths.path(size)
        if first:
            with pytest.raises(OutOfRange):
                paths.path(first - 1)
    with pytest.raises(OutOfRange):
        RunPaths(tree.reader(), first, LEAVES[first:size], [*edge, LEAVES[0]])


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_hash_pairs_is_hash_children_on_each_pair(nodes):
    expected = [
        hash_children(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)
    ]
    assert hash_pairs(nodes) == expected


def test_run_paths_refuse_a_run_that_does_not_end_the_tree():
    reader = tree_of(40).reader()
    with pytest.raises(OutOfRange):
        RunPaths(reader, 30, LEAVES[30:39])
    with pytest.raises(OutOfRange):
        RunPaths(reader, 40, [])


@given(st.integers(1, MAX), st.data())
def test_consistency_matches_oracle_and_verifies(size, data):
    old = data.draw(st.integers(1, size))
    proof = build_consistency_proof(FULL.reader(), old, size)
    assert proof == oracle.proof(old, LEAVES[:size])
    verify_consistency(
        old, size, merkle_root(LEAVES[:old]), merkle_root(LEAVES[:size]), proof
    )


@given(st.integers(2, 600), st.data())
def test_any_bit_flip_breaks_inclusion(size, data):
    index = data.draw(st.integers(0, size - 1))
    proof = build_inclusion_proof(FULL.reader(), index, size)
    good_root = merkle_root(LEAVES[:size])
    target = data.draw(st.sampled_from(["proof", "root", "leaf", "index", "size"]))
    bit = data.draw(st.integers(0, 255))
    args = [index, size, LEAVES[index], list(proof), good_root]
    if target == "proof":
        assume(proof)
        k = data.draw(st.integers(0, len(proof) - 1))
        args[3][k] = flip(proof[k], bit)
    elif target == "root":
        args[4] = flip(good_root, bit)
    elif target == "leaf":
        args[2] = flip(LEAVES[index], bit)
    elif target == "index":
        args[0] = index ^ (1 << data.draw(st.integers(0, 10)))
    else:
        # A size is only ever trusted together with its root (both come from one
        # signed checkpoint), so a changed size is checked against the genuine root
        # of that size. The bare RFC 9162 algorithm cannot bind the size by itself:
        # leaf 0's path is the same in trees of 5 and 7 leaves.
        args[1] = size ^ (1 << data.draw(st.integers(0, 10)))
        assume(0 < args[1] <= MAX)
        args[4] = merkle_root(LEAVES[: args[1]])
    with pytest.raises(VerificationError):
        verify_inclusion(*args)


@given(st.integers(2, 600), st.data())
def test_any_bit_flip_breaks_consistency(size, data):
    old = data.draw(st.integers(1, size - 1))
    proof = build_consistency_proof(FULL.reader(), old, size)
    args = [
        old,
        size,
        merkle_root(LEAVES[:old]),
        merkle_root(LEAVES[:size]),
        list(proof),
    ]
    target = data.draw(st.sampled_from(["proof", "old_root", "new_root", "old", "new"]))
    bit = data.draw(st.integers(0, 255))
    if target == "proof":
        k = data.draw(st.integers(0, len(proof) - 1))
        args[4][k] = flip(proof[k], bit)
    elif target == "old_root":
        args[2] = flip(args[2], bit)
    elif target == "new_root":
        args[3] = flip(args[3], bit)
    elif target == "old":
        # As for inclusion: a size comes with its own root from a checkpoint.
        args[0] = old ^ (1 << data.draw(st.integers(0, 10)))
        assume(0 < args[0] <= MAX)
        args[2] = merkle_root(LEAVES[: args[0]])
    else:
        args[1] = size ^ (1 << data.draw(st.integers(0, 10)))
        assume(0 < args[1] <= MAX)
        args[3] = merkle_root(LEAVES[: args[1]])
    with pytest.raises(VerificationError):
        verify_consistency(*args)


@given(st.integers(0, MAX), st.lists(st.integers(1, 400), max_size=8))
def test_root_independent_of_batching(size, batches):
    tree = tree_of(size, batches)
    assert tree.state.root == merkle_root(LEAVES[:size])
    compact = CompactRange()
    for leaf in LEAVES[:size]:
        compact.append(leaf)
    assert compact.root() == tree.state.root


def test_naive_oracle_agrees_on_random_data():
    leaves = [oracle.leaf(os.urandom(16)) for _ in range(777)]
    tree = MemTree()
    tree.append(leaves[:300])
    tree.append(leaves[300:])
    assert tree.state.root == oracle.mth(leaves)


# -- many proofs in one tree, sharing the proven nodes (InclusionVerifier) -----------


@given(
    st.integers(1, MAX),
    st.lists(st.integers(0, MAX - 1), min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 39), st.integers(0, 64 * 8 * 32)), max_size=6),
)
def test_shared_verification_agrees_with_verify_inclusion(size, picks, tampers):
    """Valid proofs pass, every tampered one (a flipped bit, a hash dropped, the
    wrong leaf or index) is refused, in any order and however warm the cache."""
    from verifier.proof_check import InclusionVerifier

    reader = FULL.reader()
    expected = root(size)
    shared = InclusionVerifier(size, expected)
    indices = [p % size for p in picks]
    bad = {n % len(indices): bit for n, bit in tampers}
    for n, index in enumerate(indices):
        proof = build_inclusion_proof(reader, index, size)
        leaf = LEAVES[index]
        if n not in bad:
            shared.verify(index, leaf, proof)
            continue
        bit = bad[n]
        how = bit % 4
        if how == 0 and proof:
            at = bit // 4 % len(proof)
            proof = [*proof[:at], flip(proof[at], bit), *proof[at + 1 :]]
        elif how == 1 and proof:
            proof = proof[:-1]
        elif how == 2:
            leaf = flip(leaf, bit)
        elif size > 1:
            index = (index + 1 + bit % (size - 1)) % size
        else:
            leaf = flip(leaf, bit)
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, leaf, proof, expected)
        with pytest.raises(VerificationError):
            shared.verify(index, leaf, proof)

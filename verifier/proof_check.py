"""Merkle proof checking: RFC 9162 sections 2.1.3.2 (inclusion), 2.1.4.2 (consistency).

These are documented primitives, the "hazmat" layer: prefer ``verify_checkpoint`` and
friends from :mod:`verifier` unless you know which root you trust and why.

Preconditions are checked before any hashing (``0 <= index < size``,
``0 < old_size <= new_size``, every hash exactly 32 bytes, an empty consistency proof
only between equal sizes), as transparency-dev/merkle's ``proof/verify.go`` does. Every
function returns ``None`` or raises; none returns ``False``.

Proof *building* lives on the server (``ledger.read.proof_builder``) and is written
independently; the two meet only at shared test vectors.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Sequence

from verifier.errors import Inconsistent, MalformedInput, ProofInvalid
from verifier.rfc6962 import HASH_SIZE, hash_children

__all__ = [
    "MAX_PROOF_HASHES",
    "InclusionVerifier",
    "root_from_inclusion_proof",
    "roots_from_consistency_proof",
    "verify_consistency",
    "verify_inclusion",
]

# A tree of fewer than 2**64 leaves never needs more than 64 hashes in a proof
# (65 for consistency, where a power-of-two old size has its root prepended).
MAX_PROOF_HASHES = 64


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        found = len(value) if isinstance(value, bytes | bytearray) else type(value)
        raise MalformedInput(f"{what}: expected {HASH_SIZE} bytes, found {found}")


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise MalformedInput(
            f"proof: expected at most {MAX_PROOF_HASHES} hashes, found {len(proof)}"
        )
    for i, item in enumerate(proof):
        _check_hash(item, f"proof hash {i}")


def _compare_roots(calculated: bytes, expected: bytes, what: str) -> None:
    if not hmac.compare_digest(calculated, expected):
        raise ProofInvalid(
            f"{what}: calculated root {calculated.hex()} != expected {expected.hex()}",
            expected=expected.hex(),
            calculated=calculated.hex(),
        )


def _inclusion_path(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> Iterator[tuple[int, int, bytes]]:
    """Each node ``proof`` builds on leaf ``index``'s way up (RFC 9162 2.1.3.2).

    Yields (level, position, hash) in a tree of ``size``; the last is the root.

    Raises (as it is iterated):
        MalformedInput: a hash is not 32 bytes or the proof is absurdly long.
        ProofInvalid: ``index`` is not below ``size``, or the proof length does not
            fit the shape of the tree.
    """
    if not 0 <= index < size:
        raise ProofInvalid(f"inclusion: index {index} is not below tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_proof(proof)
    # (1) fn walks the leaf's path, sn the tree's last leaf; level counts the
    # shifts, so that (level, fn) names the subtree the node hashes.
    fn, sn, level = index, size - 1, 0
    node = bytes(leaf_hash)
    for item in proof:
        # (2) A proof longer than the path is refused.
        if sn == 0:
            raise ProofInvalid(f"inclusion: proof too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            node = hash_children(item, node)
            if not fn & 1:
                # Right edge: skip the levels where this node has no right sibling.
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
                    level += 1
        else:
            node = hash_children(node, item)
        fn >>= 1
        sn >>= 1
        level += 1
        yield level, fn, node
    # (3) A proof shorter than the path is refused.
    if sn != 0:
        raise ProofInvalid(f"inclusion: proof too short ({len(proof)} hashes)")


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` leads to for leaf ``index`` of a tree of ``size``.

    Raises:
        MalformedInput: a hash is not 32 bytes or the proof is absurdly long.
        ProofInvalid: ``index`` is not below ``size``, or the proof length does not
            fit the shape of the tree.
    """
    root = leaf_hash
    for step in _inclusion_path(index, size, leaf_hash, proof):
        root = step[2]
    return bytes(root)


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises:
        MalformedInput: a hash is not 32 bytes.
        ProofInvalid: the proof does not lead to ``root``.
    """
    _check_hash(root, "root")
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    _compare_roots(calculated, root, "inclusion")


class InclusionVerifier:
    """Checks many inclusion proofs in one tree (``size``, ``root``), sharing work.

    Proofs of nearby leaves meet on their way up: once a node is proven (on a
    path that reached the root), a later proof whose path reaches the same
    node with the same hash, and whose remaining hashes are the ones that
    proved it, is proven there. Nothing is accepted that ``verify_inclusion``
    refuses: a path that differs anywhere is walked to the root in full.
    ``limit`` bounds the nodes kept.
    """

    def __init__(self, size: int, root: bytes, limit: int = 1 << 16) -> None:
        _check_hash(root, "root")
        self.size = size
        self.root = bytes(root)
        self.limit = limit
        # (level, position) -> (its hash, the proof's hashes above it)
        self._proven: dict[tuple[int, int], tuple[bytes, tuple[bytes, ...]]] = {}

    def verify(self, index: int, leaf_hash: bytes, proof: Sequence[bytes]) -> None:
        """Check that ``leaf_hash`` is leaf ``index`` of this tree.

        Raises:
            MalformedInput: a hash is not 32 bytes, or the proof is absurdly long.
            ProofInvalid: the proof does not lead to the root.
        """
        proof = tuple(proof)
        proven = self._proven
        path: list[tuple[tuple[int, int], bytes, int]] = []
        root = leaf_hash
        steps = _inclusion_path(index, self.size, leaf_hash, proof)
        for k, (level, fn, root) in enumerate(steps, start=1):
            known = proven.get((level, fn))
            if known is not None and known[0] == root and known[1] == proof[k:]:
                return  # the rest of this path is a proven one
            path.append(((level, fn), root, k))
        _compare_roots(bytes(root), self.root, "inclusion")
        if len(proven) + len(path) > self.limit:
            proven.clear()
        for key, value, rest in path:
            proven[key] = (value, proof[rest:])


def roots_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Return (old root, new root) as recomputed from a consistency proof.

    ``old_root`` is needed only when ``old_size`` is a power of two, where RFC 9162
    omits it from the proof. Requires ``0 < old_size < new_size``.

    Raises:
        MalformedInput: a hash is not 32 bytes.
        ProofInvalid: the sizes are impossible or the proof does not fit them.
    """
    if not 0 < old_size < new_size:
        raise ProofInvalid(
            f"consistency: need 0 < old size < new size, found {old_size}, {new_size}"
        )
    _check_hash(old_root, "old root")
    _check_proof(proof)
    if not proof:
        raise ProofInvalid("consistency: empty proof between different sizes")
    hashes = list(proof)
    # (1) A power-of-two old tree is itself a node of the new one: its root is the seed.
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    # (2) Skip the levels where the old tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = hashes[0]
    for item in hashes[1:]:
        if sn == 0:
            raise ProofInvalid(f"consistency: proof too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            first = hash_children(item, first)
            second = hash_children(item, second)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            second = hash_children(second, item)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid(f"consistency: proof too short ({len(proof)} hashes)")
    return first, second


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree (``old_size``, ``old_root``) is a prefix of the new one.

    Follows the reference verifier: ``old_size == 0`` is refused (the empty tree is
    trivially a prefix of everything, so a caller that wants to accept it must decide
    that itself), equal sizes need an empty proof and equal roots.

    Raises:
        MalformedInput: a hash is not 32 bytes.
        ProofInvalid: sizes are impossible or the proof does not verify.
        Inconsistent: equal sizes with different roots (a fork).
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if old_size <= 0 or new_size < old_size:
        raise ProofInvalid(
            f"consistency: need 0 < old size <= new size, found {old_size}, {new_size}"
        )
    if old_size == new_size:
        if proof:
            raise ProofInvalid("consistency: equal sizes need an empty proof")
        if not hmac.compare_digest(old_root, new_root):
            raise Inconsistent(
                f"consistency: two roots for size {old_size}: "
                f"{old_root.hex()} and {new_root.hex()}"
            )
        return
    first, second = roots_from_consistency_proof(old_size, new_size, old_root, proof)
    _compare_roots(first, old_root, "consistency (old tree)")
    _compare_roots(second, new_root, "consistency (new tree)")

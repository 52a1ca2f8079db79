"""Consistency proofs: a proof that fits the sizes still has to reach *both* roots.

The proofs here are correct for their sizes (built by the naive oracle), so any
rejection comes from the root comparison, not from a length or shape check.
For an old size that is a power of two the old root is the proof's seed (RFC 9162
omits it), so only other old sizes can show the old-root comparison on its own.
"""

from __future__ import annotations

import pytest

from tests import oracle
from verifier.errors import ProofInvalid
from verifier.proof_check import roots_from_consistency_proof, verify_consistency

LEAVES = [oracle.leaf(b"entry %d" % i) for i in range(16)]
# Old sizes that are not powers of two, so the old root is recomputed.
SIZES = [(3, 4), (3, 8), (5, 7), (6, 8), (7, 16), (11, 13)]


def _flip(digest: bytes, bit: int = 0) -> bytes:
    return bytes([digest[0] ^ (1 << bit), *digest[1:]])


def _case(old: int, new: int) -> tuple[bytes, bytes, list[bytes]]:
    old_root = oracle.mth(LEAVES[:old])
    new_root = oracle.mth(LEAVES[:new])
    return old_root, new_root, oracle.proof(old, LEAVES[:new])


@pytest.mark.parametrize(("old", "new"), SIZES)
def test_valid_consistency_proof_verifies(old, new):
    old_root, new_root, proof = _case(old, new)
    verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(("old", "new"), SIZES)
def test_old_root_alone_wrong_rejected(old, new):
    # The proof computes the genuine old root; the claimed one differs by a bit.
    old_root, new_root, proof = _case(old, new)
    assert roots_from_consistency_proof(old, new, _flip(old_root), proof) == (
        old_root,
        new_root,
    )
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, _flip(old_root), new_root, proof)


@pytest.mark.parametrize(("old", "new"), [*SIZES, (4, 8), (1, 2)])
def test_new_root_alone_wrong_rejected(old, new):
    old_root, new_root, proof = _case(old, new)
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, old_root, _flip(new_root, 7), proof)

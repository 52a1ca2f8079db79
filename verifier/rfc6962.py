"""RFC 6962 / RFC 9162 section 2.1 Merkle tree hashing.

Leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right), and
the empty tree's root is SHA-256(""). The domain-separation prefixes are always
applied: there is deliberately no option to turn them off (without them a leaf can
pose as an interior node, the classic second-preimage forgery).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "hash_children", "hash_leaf", "hash_pairs"]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(entry: bytes) -> bytes:
    """Return the RFC 6962 leaf hash of ``entry`` (MTH of a one-leaf tree)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash of two 32-byte child hashes."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def hash_pairs(nodes: Sequence[bytes]) -> list[bytes]:
    """Node hashes of consecutive pairs (0 and 1, 2 and 3, ...); an odd last is left.

    The same as ``hash_children`` on each pair, in one loop: building a tile's
    255 interior nodes is the hot path of a cold proof.
    """
    sha256 = hashlib.sha256
    return [
        sha256(NODE_PREFIX + nodes[i] + nodes[i + 1]).digest()
        for i in range(0, len(nodes) - 1, 2)
    ]

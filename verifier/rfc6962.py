"""RFC 6962 / RFC 9162 section 2.1 Merkle tree hashing.

Leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right), and
the empty tree's root is SHA-256(""). The domain-separation prefixes are always
applied: there is deliberately no option to turn them off (without them a leaf can
pose as an interior node, the classic second-preimage forgery).
"""

from __future__ import annotations

import hashlib

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "hash_children", "hash_leaf"]

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

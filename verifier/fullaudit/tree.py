"""Check 1 of an audit: the RFC 6962 root of the entries, as they stream by.

``TreeHasher`` keeps only the compact range (one hash per perfect subtree, RFC
9162 §2.1.1), so an audit of any size hashes in O(log n) memory; its frontier is
saved with the audit's state so that a resumed audit continues the same tree.
Fetching the entries and checking the checkpoint's signature are the caller's.
"""

from __future__ import annotations

from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_leaf

__all__ = ["TreeHasher"]


class TreeHasher:
    """The RFC 6962 root of a growing list of entries, in O(log n) memory."""

    def __init__(self, frontier: list[tuple[int, bytes]] | None = None) -> None:
        self._range: list[tuple[int, bytes]] = list(frontier or [])  # left to right
        self.size = sum(1 << height for height, _ in self._range)

    @property
    def frontier(self) -> list[tuple[int, bytes]]:
        """(height, hash) of the perfect subtrees the tree so far is made of."""
        return list(self._range)

    def add(self, entry: bytes) -> None:
        """Append one entry (its leaf hash is computed here)."""
        self.add_leaf(hash_leaf(entry))

    def add_leaf(self, node: bytes) -> None:
        """Append one leaf hash."""
        height = 0
        while self._range and self._range[-1][0] == height:
            node = hash_children(self._range.pop()[1], node)
            height += 1
        self._range.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        """The root of the entries added so far."""
        if not self._range:
            return EMPTY_ROOT
        node = self._range[-1][1]
        for _, left in reversed(self._range[:-1]):
            node = hash_children(left, node)
        return node

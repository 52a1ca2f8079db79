"""Compact ranges and roots of RFC 6962 trees (RFC 9162 section 2.1.1).

A tree of ``size`` leaves is a sequence of perfect subtrees, one per set bit of
``size``, largest first; its root folds them from the right. ``CompactRange`` keeps
only those subtree roots (at most 64 hashes), so appending and asking for the root
cost O(log n) whatever the size: nothing here holds every leaf.

Pure: hashes in, hashes out. Proof *checking* is in ``verifier.proof_check``.
"""

from __future__ import annotations

from collections.abc import Sequence

from verifier.rfc6962 import EMPTY_ROOT, hash_children, hash_pairs

__all__ = [
    "CompactRange",
    "compact_roots",
    "fold_right",
    "merkle_root",
    "perfect_levels",
    "perfect_root",
    "perfect_spans",
]


def perfect_levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of a perfect subtree, bottom (``hashes``, 2**k of them) to root.

    Raises:
        ValueError: the length is not a power of two.
    """
    count = len(hashes)
    if count == 0 or count & (count - 1):
        raise ValueError(f"perfect subtree needs 2**k hashes, found {count}")
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        levels.append(hash_pairs(levels[-1]))
    return levels


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree whose bottom nodes are ``hashes`` (length 2**k).

    Raises:
        ValueError: the length is not a power of two.
    """
    return perfect_levels(hashes)[-1][0]


def fold_right(subtrees: Sequence[bytes]) -> bytes:
    """Fold perfect-subtree roots (largest first) into the tree root."""
    if not subtrees:
        return EMPTY_ROOT
    root = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        root = hash_children(left, root)
    return root


def perfect_spans(start: int, count: int) -> list[tuple[int, int]]:
    """The compact range of leaves [start, start + count), largest subtree first.

    As (height, first leaf) of each perfect subtree: one per set bit of
    ``count``, each 2**height leaves. ``start`` must be aligned as RFC 6962
    splits (a multiple of the first subtree's width), as it is for the tree's
    own range (0) and every range a proof asks for.
    """
    spans = []
    remaining = count
    while remaining:
        height = remaining.bit_length() - 1
        spans.append((height, start))
        start += 1 << height
        remaining -= 1 << height
    return spans


def compact_roots(hashes: Sequence[bytes]) -> list[bytes]:
    """The perfect-subtree roots over ``hashes`` (any count), largest first."""
    return [
        perfect_root(hashes[first : first + (1 << height)])
        for height, first in perfect_spans(0, len(hashes))
    ]


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 root of a tree whose bottom nodes are ``hashes`` (any count)."""
    return fold_right(compact_roots(hashes))


class CompactRange:
    """Right edge of a growing tree: a perfect-subtree root per set bit of size."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"compact range of size {size} needs {size.bit_count()} hashes, "
                f"found {len(hashes)}"
            )
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Perfect-subtree roots, largest subtree first."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        """An independent copy."""
        return CompactRange(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash on the right."""
        node = leaf_hash
        size = self._size
        hashes = self._hashes
        while size & 1:
            node = hash_children(hashes.pop(), node)
            size >>= 1
        hashes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The RFC 6962 root of the covered tree."""
        return fold_right(self._hashes)

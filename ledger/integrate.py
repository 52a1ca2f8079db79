"""Integration: grow the tree by a batch of leaf hashes (pure; Tessera's Integrate).

``TreeState`` is everything the writer must know about the right edge of the tree:
the hashes of the partial tile at every level (at most 255 per level) and the
compact range for the root. ``integrate`` returns the new state and the tiles that
became full, which are immutable from then on. Memory is O(255 * levels), flat as
the log grows. Sequencing (durably assigning indices) is a separate step in
``ledger.sequencer``; both happen in the same commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.tree.compact import CompactRange, compact_roots, fold_right, perfect_levels
from ledger.tree.tiles import TILE_HEIGHT, TILE_WIDTH, level_width

__all__ = ["FullTile", "TreeState", "integrate"]


@dataclass(frozen=True, slots=True)
class FullTile:
    """A tile that just became full: 256 hashes (8,192 bytes) and their subtree root.

    ``nodes`` holds every level of the tile's subtree (256 hashes up to the root),
    already computed on the way to the root, for the proof cache.
    """

    level: int
    index: int
    hashes: bytes
    root: bytes
    nodes: tuple[tuple[bytes, ...], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.hashes) != TILE_WIDTH * 32 or len(self.root) != 32:
            raise ValueError("full tile must hold 256 hashes and a 32-byte root")


@dataclass(frozen=True, slots=True)
class TreeState:
    """Right edge of a tree of ``size`` leaves: partial tile hashes per level."""

    size: int
    partials: tuple[tuple[bytes, ...], ...]
    compact: CompactRange = field(compare=False, repr=False)

    @classmethod
    def empty(cls) -> TreeState:
        """The state of the empty tree."""
        return cls(0, (), CompactRange())

    @classmethod
    def from_partials(cls, size: int, partials: Sequence[Sequence[bytes]]) -> TreeState:
        """Rebuild a state (and its compact range) from stored partial tiles.

        Raises:
            ValueError: the partial tiles do not have the widths ``size`` implies.
        """
        parts = tuple(tuple(p) for p in partials)
        for level, hashes in enumerate(parts):
            if len(hashes) != level_width(size, level) % TILE_WIDTH:
                raise ValueError(
                    f"level {level}: expected {level_width(size, level) % TILE_WIDTH} "
                    f"partial hashes for size {size}, found {len(hashes)}"
                )
        if level_width(size, len(parts)) != 0:
            raise ValueError(f"size {size} needs more than {len(parts)} levels")
        subtrees: list[bytes] = []
        for level in reversed(range(len(parts))):
            subtrees += compact_roots(parts[level])
        return cls(size, parts, CompactRange(size, subtrees))

    @property
    def root(self) -> bytes:
        """The RFC 6962 root of the tree."""
        return fold_right(self.compact.hashes)


def integrate(
    state: TreeState, leaf_hashes: Sequence[bytes]
) -> tuple[TreeState, list[FullTile]]:
    """Append ``leaf_hashes`` to the tree; return the new state and new full tiles."""
    partials = [list(p) for p in state.partials]
    compact = state.compact.copy()
    full: list[FullTile] = []
    size = state.size
    for leaf_hash in leaf_hashes:
        compact.append(leaf_hash)
        node = leaf_hash
        level = 0
        index = size
        # Push the hash into its level; a tile that fills up pushes its root upward.
        while True:
            if level == len(partials):
                partials.append([])
            row = partials[level]
            row.append(node)
            if len(row) < TILE_WIDTH:
                break
            tile_index = index >> TILE_HEIGHT
            nodes = perfect_levels(row)
            node = nodes[-1][0]
            full.append(
                FullTile(
                    level,
                    tile_index,
                    b"".join(row),
                    node,
                    tuple(tuple(n) for n in nodes),
                )
            )
            row.clear()
            level += 1
            index = tile_index
        size += 1
    while partials and not partials[-1] and level_width(size, len(partials) - 1) == 0:
        partials.pop()
    new_state = TreeState(size, tuple(tuple(p) for p in partials), compact)
    return new_state, full

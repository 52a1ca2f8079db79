"""Inclusion and consistency proof *building* (RFC 9162 sections 2.1.3.1 and 2.1.4.1).

Written top-down from the RFC's PATH and SUBPROOF definitions, independently of the
bottom-up checking code in ``verifier.merkle``; the two meet only at test vectors.
Every proof hash is the root of a complete subtree or of a right-edge range, taken
from tiles: a complete subtree of height h lives in one tile at level h // 8, so a
proof touches O(log n) tiles. Full tiles are immutable and cached with all their
interior nodes; partial tiles come from the current state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ledger.errors import OutOfRange
from ledger.tree.compact import fold_right
from ledger.tree.tiles import TILE_HEIGHT, TILE_WIDTH, level_width
from verifier.rfc6962 import hash_children

_MAX_RANGES = 1 << 16

__all__ = [
    "FullTileCache",
    "NodeReader",
    "TileNodes",
    "build_consistency_proof",
    "build_inclusion_proof",
    "subtree_hash",
]


class TileNodes:
    """All complete interior nodes of one tile, computed lazily from its hashes."""

    __slots__ = ("_rows",)

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self._rows: list[list[bytes]] = [list(hashes)]

    @classmethod
    def from_bytes(cls, data: bytes) -> TileNodes:
        """Build from a tile's concatenated 32-byte hashes."""
        return cls([data[i : i + 32] for i in range(0, len(data), 32)])

    def at(self, height: int, offset: int) -> bytes:
        """Node of ``height`` (0..7) at ``offset`` within the tile.

        Raises:
            OutOfRange: the node is not complete in this tile.
        """
        rows = self._rows
        while len(rows) <= height:
            below = rows[-1]
            rows.append(
                [
                    hash_children(below[i], below[i + 1])
                    for i in range(0, len(below) - 1, 2)
                ]
            )
        row = rows[height]
        if offset >= len(row):
            raise OutOfRange(f"node ({height}, {offset}) is not complete in this tile")
        return row[offset]


class FullTileCache:
    """Bounded LRU of full tiles (immutable, so never stale). Thread-safe."""

    def __init__(self, max_tiles: int = 1024) -> None:
        self._max = max_tiles
        self._tiles: OrderedDict[tuple[int, int], TileNodes] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, level: int, index: int, load: Callable[[int, int], bytes]
    ) -> TileNodes:
        """Return the cached tile, loading its bytes with ``load`` on a miss."""
        key = (level, index)
        with self._lock:
            nodes = self._tiles.get(key)
            if nodes is not None:
                self._tiles.move_to_end(key)
                return nodes
        nodes = TileNodes.from_bytes(load(level, index))
        self.put(level, index, nodes)
        return nodes

    def put(self, level: int, index: int, nodes: TileNodes) -> None:
        """Insert a tile, evicting the least recently used beyond the bound."""
        with self._lock:
            self._tiles[(level, index)] = nodes
            self._tiles.move_to_end((level, index))
            while len(self._tiles) > self._max:
                self._tiles.popitem(last=False)


class NodeReader:
    """Complete-subtree hashes of a tree of ``size`` leaves, read through tiles.

    ``load_full(level, index)`` returns a full tile's 8,192 bytes;
    ``partials[level]`` are the hashes of the partial tile at that level.
    """

    def __init__(
        self,
        size: int,
        partials: Sequence[Sequence[bytes]],
        load_full: Callable[[int, int], bytes],
        cache: FullTileCache,
    ) -> None:
        self.size = size
        self._partials = partials
        self._load_full = load_full
        self._cache = cache
        self._partial_nodes: dict[int, TileNodes] = {}
        # Range hashes are immutable for a given tree, so a reader shared by many
        # proofs of one tree (a batch of receipts) computes each only once.
        self.ranges: dict[tuple[int, int], bytes] = {}

    def node(self, height: int, index: int) -> bytes:
        """Root of the complete subtree of ``height`` at position ``index``.

        Raises:
            OutOfRange: the subtree is not complete in this tree.
        """
        level, sub = divmod(height, TILE_HEIGHT)
        shift = TILE_HEIGHT - sub
        tile = index >> shift
        offset = index - (tile << shift)
        if tile < level_width(self.size, level) // TILE_WIDTH:
            nodes = self._cache.get(level, tile, self._load_full)
        else:
            if level >= len(self._partials):
                raise OutOfRange(f"subtree ({height}, {index}) beyond tree size")
            partial = self._partial_nodes.get(level)
            if partial is None:
                partial = TileNodes(self._partials[level])
                self._partial_nodes[level] = partial
            nodes = partial
        return nodes.at(sub, offset)


def subtree_hash(reader: NodeReader, start: int, end: int) -> bytes:
    """RFC 6962 MTH of leaves [start, end); ``start`` aligned as RFC 6962 splits."""
    key = (start, end)
    cached = reader.ranges.get(key)
    if cached is not None:
        return cached
    subtrees: list[bytes] = []
    remaining = end - start
    while remaining:
        height = remaining.bit_length() - 1
        subtrees.append(reader.node(height, start >> height))
        start += 1 << height
        remaining -= 1 << height
    value = fold_right(subtrees)
    if len(reader.ranges) < _MAX_RANGES:
        reader.ranges[key] = value
    return value


def _split(count: int) -> int:
    """Largest power of two strictly smaller than ``count`` (count >= 2)."""
    return 1 << ((count - 1).bit_length() - 1)


def build_inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[0:size]), leaf-side sibling first.

    Raises:
        OutOfRange: ``index >= size`` or ``size`` beyond the tree.
    """
    if not 0 <= index < size <= reader.size:
        raise OutOfRange(
            f"inclusion proof: need 0 <= index < size <= {reader.size}, "
            f"found index {index}, size {size}"
        )
    path: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        half = _split(high - low)
        if index < low + half:
            path.append(subtree_hash(reader, low + half, high))
            high = low + half
        else:
            path.append(subtree_hash(reader, low, low + half))
            low += half
    path.reverse()
    return path


def build_consistency_proof(
    reader: NodeReader, old_size: int, new_size: int
) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[0:new_size]); empty when the sizes are equal.

    Raises:
        OutOfRange: sizes not ``0 < old_size <= new_size <= tree size``.
    """
    if not 0 < old_size <= new_size <= reader.size:
        raise OutOfRange(
            f"consistency proof: need 0 < old <= new <= {reader.size}, "
            f"found {old_size}, {new_size}"
        )
    proof: list[bytes] = []
    # SUBPROOF(m, D[low:high], complete) unrolled: the tail is appended in reverse.
    low, high, m, complete = 0, new_size, old_size, True
    tail: list[bytes] = []
    while m != high - low:
        half = _split(high - low)
        if m <= half:
            tail.append(subtree_hash(reader, low + half, high))
            high = low + half
        else:
            tail.append(subtree_hash(reader, low, low + half))
            low += half
            m -= half
            complete = False
    if not complete:
        proof.append(subtree_hash(reader, low, high))
    proof.extend(reversed(tail))
    return proof

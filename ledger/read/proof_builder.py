"""Inclusion and consistency proof *building* (RFC 9162 sections 2.1.3.1 and 2.1.4.1).

Written top-down from the RFC's PATH and SUBPROOF definitions, independently of the
bottom-up checking code in ``verifier.proof_check``; the two meet only at test vectors.
Within a complete subtree PATH is the sibling at every height, so once the split
reaches the entry's complete subtree the rest is read off the tiles over it.
Every proof hash is the root of a complete subtree or of a right-edge range, taken
from tiles: a complete subtree of height h lives in one tile at level h // 8, so a
proof touches O(log n) tiles. Full tiles are immutable and cached with all their
interior nodes; partial tiles come from the current state.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence

from ledger.errors import OutOfRange
from ledger.tree.compact import fold_right, perfect_spans
from ledger.tree.tiles import TILE_HEIGHT, TILE_WIDTH, level_width
from verifier.rfc6962 import hash_children, hash_pairs

_MAX_RANGES = 1 << 16

__all__ = [
    "FullTileCache",
    "NodeReader",
    "RunPaths",
    "TileNodes",
    "build_consistency_proof",
    "build_inclusion_proof",
    "build_inclusion_proofs",
    "subtree_hash",
]


class TileNodes:
    """All complete nodes of one tile, computed once, then read-only.

    Kept as one bytes object (row after row, 32 bytes a node: about 16 KiB for a
    full tile) so that a large cache stays compact; computed eagerly so that a
    tile shared by concurrent readers is never mutated.
    """

    __slots__ = ("_blob", "_starts", "_widths")

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self._set(_tile_levels(hashes))

    def _set(self, rows: Sequence[Sequence[bytes]]) -> None:
        starts, widths, offset = [], [], 0
        for row in rows:
            starts.append(offset)
            widths.append(len(row))
            offset += 32 * len(row)
        self._blob = b"".join(b"".join(row) for row in rows)
        self._starts = starts
        self._widths = widths

    @classmethod
    def from_bytes(cls, data: bytes) -> TileNodes:
        """Build from a tile's concatenated 32-byte hashes."""
        return cls([data[i : i + 32] for i in range(0, len(data), 32)])

    @classmethod
    def from_levels(cls, levels: Sequence[Sequence[bytes]]) -> TileNodes:
        """Adopt already-computed levels of a full tile (bottom row first)."""
        nodes = cls.__new__(cls)
        nodes._set(levels)
        return nodes

    def bottom(self) -> bytes:
        """The tile's own hashes (row 0), as stored and served."""
        return self._blob[: 32 * self._widths[0]]

    def at(self, height: int, offset: int) -> bytes:
        """Node of ``height`` (0..7) at ``offset`` within the tile.

        Raises:
            OutOfRange: the node is not complete in this tile.
        """
        if height >= len(self._widths) or not 0 <= offset < self._widths[height]:
            raise OutOfRange(f"node ({height}, {offset}) is not complete in this tile")
        start = self._starts[height] + 32 * offset
        return self._blob[start : start + 32]

    def siblings(self, offset: int, count: int) -> list[bytes]:
        """Siblings of node ``offset`` of row 0 and of its ancestors, rows 0..count-1.

        Raises:
            OutOfRange: one of them is not complete in this tile.
        """
        out = []
        blob, starts, widths = self._blob, self._starts, self._widths
        for row in range(count):
            sibling = (offset >> row) ^ 1
            if row >= len(widths) or sibling >= widths[row]:
                raise OutOfRange(
                    f"node ({row}, {sibling}) is not complete in this tile"
                )
            start = starts[row] + 32 * sibling
            out.append(blob[start : start + 32])
        return out


def _tile_levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Rows of complete nodes over ``hashes``: each row pairs up the one below."""
    rows = [list(hashes)]
    while len(rows[-1]) > 1:
        rows.append(hash_pairs(rows[-1]))
    return rows


class FullTileCache:
    """Bounded LRU of full tiles (immutable, so never stale). Thread-safe.

    About 16 KiB a tile: the default 4,096 tiles (64 MiB) hold every level-0 tile
    of a million-entry log; beyond that the cache stays at its bound and cold
    tiles are read and re-hashed (255 hashes) on demand.
    """

    def __init__(self, max_tiles: int = 4096) -> None:
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

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        """Drop every cached tile."""
        with self._lock:
            self._tiles.clear()

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
        return self.tile(level, tile).at(sub, index - (tile << shift))

    def path(self, index: int, height: int) -> list[bytes]:
        """Leaf ``index``'s audit path in the complete subtree of ``height`` over it.

        The siblings of its ancestors of heights 0 .. height - 1, leaf side
        first: the part of an inclusion proof below the tree's right edge. The
        ancestors of one tile level share that tile, so it is looked up once.

        Raises:
            OutOfRange: the subtree is not complete in this tree.
        """
        out: list[bytes] = []
        for level in range(0, (height + TILE_HEIGHT - 1) // TILE_HEIGHT):
            position = index >> (level * TILE_HEIGHT)  # in the level's row
            tile = position >> TILE_HEIGHT
            out += self.tile(level, tile).siblings(
                position - (tile << TILE_HEIGHT),
                min(TILE_HEIGHT, height - level * TILE_HEIGHT),
            )
        return out

    def tile(self, level: int, tile: int) -> TileNodes:
        """The nodes of tile ``tile`` of ``level``, full (cached) or partial."""
        if tile < level_width(self.size, level) // TILE_WIDTH:
            return self._cache.get(level, tile, self._load_full)
        if level >= len(self._partials):
            raise OutOfRange(f"tile {tile} of level {level} is beyond the tree size")
        partial = self._partial_nodes.get(level)
        if partial is None:
            partial = TileNodes(self._partials[level])
            self._partial_nodes[level] = partial
        return partial


def subtree_hash(reader: NodeReader, start: int, end: int) -> bytes:
    """RFC 6962 MTH of leaves [start, end); ``start`` aligned as RFC 6962 splits."""
    key = (start, end)
    cached = reader.ranges.get(key)
    if cached is not None:
        return cached
    value = fold_right(
        [
            reader.node(height, first >> height)
            for height, first in perfect_spans(start, end - start)
        ]
    )
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
    upper: list[bytes] = []
    low, high = 0, size
    while high - low & high - low - 1:  # until [low, high) is a complete subtree
        half = _split(high - low)
        if index < low + half:
            upper.append(subtree_hash(reader, low + half, high))
            high = low + half
        else:
            upper.append(reader.node(half.bit_length() - 1, low // half))
            low += half
    # [low, high) is complete (RFC 6962 splits off complete left halves only):
    # the rest of PATH is the sibling at every height, read from tiles directly.
    upper.reverse()
    return reader.path(index, (high - low).bit_length() - 1) + upper


def build_inclusion_proofs(
    reader: NodeReader, indices: Iterable[int], size: int
) -> Iterator[list[bytes]]:
    """PATH of each of ``indices`` in D[0:size], in their order.

    The leaves of one complete 256-leaf tile lie in one complete subtree of
    the tree's decomposition, so their proofs differ only below the tile: its
    part above is built once for a run of leaves of one tile.

    Raises:
        OutOfRange: an index ``>= size`` or ``size`` beyond the tree.
    """
    block, above, nodes = -1, list[bytes](), None
    for index in indices:
        if index >> TILE_HEIGHT == block and nodes is not None:
            yield nodes.siblings(index & TILE_WIDTH - 1, TILE_HEIGHT) + above
            continue
        proof = build_inclusion_proof(reader, index, size)
        if ((index >> TILE_HEIGHT) + 1) << TILE_HEIGHT <= size:
            block, above = index >> TILE_HEIGHT, proof[TILE_HEIGHT:]
            nodes = reader.tile(0, block)
        else:
            block, nodes = -1, None
        yield proof


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


class RunPaths:
    """Inclusion proofs of a run of leaves at the right edge of one tree.

    A commit appends the leaves [first, size); their proofs to the new root share
    most of their nodes. Every node over the run is built once, level by level:
    node j of level l covers leaves [j * 2**l, min((j + 1) * 2**l, size)), and the
    right-most node of a level, when it has no right child, is its left child
    unchanged (RFC 6962 splits at the largest power of two). A leaf's proof is then
    the sibling of its ancestor at every level where that sibling exists; leaves of
    one 256-leaf tile share the part above level 8. Nodes left of the run are the
    perfect-subtree roots of the tree of ``first`` leaves (its compact range,
    ``left_edge``, largest first) when the caller has them, else read from
    ``reader`` (which hashes partial tiles to find them). Read-only once built, so
    it can be shared between threads.
    """

    def __init__(
        self,
        reader: NodeReader,
        first: int,
        leaf_hashes: Sequence[bytes],
        left_edge: Sequence[bytes] | None = None,
    ) -> None:
        size = reader.size
        if not leaf_hashes or first < 0 or first + len(leaf_hashes) != size:
            raise OutOfRange(
                f"run of {len(leaf_hashes)} leaves from {first} does not end "
                f"at the tree size {size}"
            )
        if left_edge is not None and len(left_edge) != first.bit_count():
            raise OutOfRange(
                f"the left edge of {first} leaves has {first.bit_count()} subtrees, "
                f"found {len(left_edge)}"
            )
        self.first = first
        self.size = size
        levels: list[tuple[int, list[bytes]]] = []
        low, row = first, list(leaf_hashes)
        for level in range((size - 1).bit_length()):
            if low & 1:
                # The subtree left of the run at this level is the compact-range
                # member for bit ``level`` of ``first``.
                row.insert(
                    0,
                    reader.node(level, low - 1)
                    if left_edge is None
                    else left_edge[(first >> (level + 1)).bit_count()],
                )
                low -= 1
            levels.append((low, row))
            row = [
                hash_children(row[k], row[k + 1]) if k + 1 < len(row) else row[k]
                for k in range(0, len(row), 2)
            ]
            low >>= 1
        self._levels = levels
        self._uppers: dict[int, tuple[bytes, ...]] = {}

    def _siblings(self, index: int, start: int, stop: int) -> list[bytes]:
        out: list[bytes] = []
        for level in range(start, stop):
            low, row = self._levels[level]
            k = ((index >> level) ^ 1) - low
            if k < len(row):
                out.append(row[k])
        return out

    def path(self, index: int) -> tuple[bytes, ...]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

        Raises:
            OutOfRange: ``index`` is not in the run.
        """
        if not self.first <= index < self.size:
            raise OutOfRange(
                f"leaf {index} is not in the run [{self.first}, {self.size})"
            )
        height = len(self._levels)
        split = min(TILE_HEIGHT, height)
        upper = self._uppers.get(index >> TILE_HEIGHT)
        if upper is None:
            upper = tuple(self._siblings(index, split, height))
            self._uppers[index >> TILE_HEIGHT] = upper
        return (*self._siblings(index, 0, split), *upper)

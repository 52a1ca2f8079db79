"""The signed tree as read back from storage, and proving reads against it.

Nothing read from the database is trusted by itself. ``signed_head`` checks the
head row against the log key; ``rebuild_edge`` rebuilds the tree's right edge
from stored entries and tiles and insists that it gives the signed root; an
``entry_prover`` proves a stored entry's bytes against the signed root (through
its proven tile, or its own inclusion proof) before anyone uses them. The writer
(``ledger.startup``) and the reader (``ledger.read.stored``) both start from
these; neither needs the other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.errors import IntegrityFailure, LedgerError
from ledger.integrate import TreeState
from ledger.read.proof_builder import NodeReader, TileNodes, build_inclusion_proof
from ledger.storage.base import LogStore
from ledger.storage.rows import EntryRow, Head
from ledger.tree.compact import perfect_root
from ledger.tree.tiles import TILE_HEIGHT, TILE_WIDTH, level_width
from verifier.checkpoint import verify_checkpoint
from verifier.errors import ProofInvalid, VerificationError
from verifier.note import VerifierKey
from verifier.proof_check import verify_inclusion
from verifier.rfc6962 import hash_leaf

__all__ = [
    "Prover",
    "SignedTree",
    "entry_prover",
    "proven_leaves",
    "rebuild_edge",
    "signed_head",
]


@dataclass(frozen=True, slots=True)
class SignedTree:
    """A tree the log key signed (``head``) with its right edge (``state``).

    One object, swapped whole when the tree grows: whoever reads it sees a head
    and a state of the same size.
    """

    head: Head
    state: TreeState

    @property
    def size(self) -> int:
        """The number of entries in the tree."""
        return self.head.size


class Prover(Protocol):
    """Checks stored entry bytes against the signed tree; returns the leaf hash."""

    def __call__(self, index: int, data: bytes) -> bytes:
        """The leaf hash of ``data`` as entry ``index``, proven.

        Raises:
            IntegrityFailure: the signed tree does not hold ``data`` there.
        """
        ...


# How many level-0 tiles one prover keeps once proven: a page of results reads
# entries from a few dozen tiles; a prover kept for long holds no more.
PROVEN_TILES = 64


def entry_prover(reader: NodeReader, size: int, root: bytes) -> Prover:
    """Proves entries (read through ``reader``) to ``root``.

    An entry in a full level-0 tile is proven by its leaf hash, found in that
    tile, once the tile itself is proven: one inclusion proof of its first leaf
    whose lower part is the tile's own nodes, so that it proves exactly the
    tile's 256 leaf hashes (the last ``PROVEN_TILES`` tiles proven are kept).
    The partial tile at the right edge is proven the same way, once: the
    inclusion proof of its first leaf, whose lower part is hashed from the
    tile's own leaf hashes, binds every one of them; its entries are then proven by
    their leaf hashes too (a reader following the log's tip proves most of
    its entries there).
    """
    proven: OrderedDict[int, TileNodes] = OrderedDict()
    full = size // TILE_WIDTH
    edge: list[tuple[bytes, ...]] = []  # the right edge's leaf hashes, proven

    def edge_leaves() -> tuple[bytes, ...]:
        if edge:
            return edge[0]
        first = full * TILE_WIDTH
        count = size - first
        nodes = reader.tile(0, full)
        leaves = tuple(nodes.at(0, i) for i in range(count))
        # The proof's lower part is hashed from this same tile's nodes.
        proof = build_inclusion_proof(reader, first, size)
        verify_inclusion(first, size, leaves[0], proof, root)
        edge.append(leaves)
        return leaves

    def tile(block: int) -> TileNodes:
        nodes = proven.get(block)
        if nodes is not None:
            proven.move_to_end(block)
            return nodes
        nodes = reader.tile(0, block)
        first = block * TILE_WIDTH
        above = build_inclusion_proof(reader, first, size)[TILE_HEIGHT:]
        path = nodes.siblings(0, TILE_HEIGHT) + above
        verify_inclusion(first, size, nodes.at(0, 0), path, root)
        proven[block] = nodes
        if len(proven) > PROVEN_TILES:
            proven.popitem(last=False)
        return nodes

    def prove(index: int, data: bytes) -> bytes:
        leaf = hash_leaf(data)
        try:
            block = index // TILE_WIDTH
            if index >= 0 and block < full:
                if tile(block).at(0, index % TILE_WIDTH) != leaf:
                    raise ProofInvalid("its leaf hash is not the one in its tile")
            elif block == full and index < size:
                if edge_leaves()[index % TILE_WIDTH] != leaf:
                    raise ProofInvalid("its leaf hash is not the one at the edge")
            else:
                proof = build_inclusion_proof(reader, index, size)
                verify_inclusion(index, size, leaf, proof, root)
        except (VerificationError, LedgerError) as e:
            raise IntegrityFailure(
                f"entry {index} as stored is not the entry the signed tree "
                f"holds at size {size}: {e}"
            ) from e
        return leaf

    return prove


def signed_head(store: LogStore, verifier_key: VerifierKey, origin: str) -> Head:
    """The stored head, checked: a valid checkpoint by the log key, stored as such.

    The head's note must be a checkpoint of ``origin`` signed by the log key for
    the head's size and root, and the checkpoint stored at that size the same.

    Raises:
        IntegrityFailure: it is not.
        StorageUnavailable: the database cannot be read.
    """
    head = store.head()
    try:
        checkpoint, _ = verify_checkpoint(head.note, verifier_key, origin)
    except VerificationError as e:
        raise IntegrityFailure(f"stored tree head is not validly signed: {e}") from e
    if checkpoint.size != head.size or checkpoint.root_hash != head.root:
        raise IntegrityFailure("stored tree head does not match its signed checkpoint")
    stored = store.checkpoint(head.size)
    if stored is None or (stored.root, stored.note) != (head.root, head.note):
        raise IntegrityFailure(
            f"the checkpoint stored at size {head.size} is "
            + ("missing" if stored is None else "not the signed head")
        )
    return head


def proven_leaves(rows: Sequence[EntryRow], start: int, end: int) -> list[bytes]:
    """The leaf hashes of the stored entries ``[start, end)``, each from its bytes.

    Raises:
        IntegrityFailure: an entry is missing or out of place, or its stored
            leaf hash is not the hash of its bytes.
    """
    leaves = []
    for offset, row in enumerate(rows):
        leaf = hash_leaf(row.data)
        if row.index != start + offset or leaf != row.leaf_hash:
            raise IntegrityFailure(
                f"entry {start + offset} does not match its stored leaf hash"
            )
        leaves.append(leaf)
    if len(leaves) != end - start:
        raise IntegrityFailure(
            f"expected {end - start} stored entries from index {start}, "
            f"found {len(leaves)}"
        )
    return leaves


def rebuild_edge(store: LogStore, head: Head) -> TreeState:
    """The tree's right edge from stored entries and tiles; it must give the root.

    The partial tile at every level is rebuilt from stored entries (level 0,
    each leaf re-hashed) and full tiles (higher levels, each tile's root
    recomputed), and together they must give exactly the signed root.

    Raises:
        IntegrityFailure: a stored hash is missing or wrong, or the root differs.
    """
    size = head.size
    partials: list[list[bytes]] = []
    level = 0
    while level_width(size, level):
        width = level_width(size, level)
        start = width - width % TILE_WIDTH
        if level == 0:
            hashes = proven_leaves(store.read_entries(start, width), start, width)
        else:
            tile_rows = store.read_tile_rows(level - 1, start, width)
            hashes = []
            for offset, (index, data, root) in enumerate(tile_rows):
                if (
                    index != start + offset
                    or perfect_root([data[i : i + 32] for i in range(0, len(data), 32)])
                    != root
                ):
                    raise IntegrityFailure(
                        f"tile {level - 1}/{start + offset} does not match its root"
                    )
                hashes.append(root)
        if len(hashes) != width - start:
            raise IntegrityFailure(
                f"level {level}: expected {width - start} stored hashes after "
                f"index {start}, found {len(hashes)}"
            )
        partials.append(hashes)
        level += 1
    state = TreeState.from_partials(size, partials)
    if state.root != head.root:
        raise IntegrityFailure(
            f"stored tiles rebuild root {state.root.hex()}, "
            f"signed root is {head.root.hex()} at size {size}"
        )
    return state

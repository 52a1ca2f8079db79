"""``saksi check``: recompute the whole tree from stored entries and compare.

First the database's append-only triggers (``ledger.storage.guards``). Then it
streams every entry in index order (memory stays flat), re-hashes it, rebuilds
every tile and compares it with the stored one, recomputes the root at every
stored checkpoint's size and verifies that checkpoint's signature, and checks
the tree head. Stops at the first difference and names it: the first bad index
or tile is what an operator needs to start an investigation. Last, the tree it
rebuilt must extend every checkpoint the operator pins (``ledger.trusted``): a
consistently rolled-back database shows nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ledger.integrate import FullTile, TreeState, integrate
from ledger.read.proof_builder import FullTileCache, NodeReader
from ledger.storage.base import WriterStore
from ledger.storage.rows import EntryRow, RecordRow, StoredCheckpoint, leaf_key
from ledger.tree.tiles import TILE_WIDTH, level_width
from ledger.trusted import rollback_problem
from verifier.checkpoint import Checkpoint, verify_checkpoint
from verifier.errors import VerificationError
from verifier.note import VerifierKey
from verifier.record import parse_log_entry, parse_record
from verifier.rfc6962 import hash_leaf

__all__ = ["CheckReport", "Problem", "check_log"]

_BATCH = 4096


@dataclass(frozen=True, slots=True)
class Problem:
    """The first difference found: what kind, where, and a human explanation."""

    kind: str
    index: int | None
    tile: str | None
    message: str
    end: int | None = None  # when not exact: the bad entry lies in [index, end)


@dataclass(slots=True)
class CheckReport:
    """Outcome of a full check."""

    size: int = 0
    entries_checked: int = 0
    tiles_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differed."""
        return not self.problems


class _Stop(Exception):
    pass


class _Checker:
    def __init__(
        self,
        storage: WriterStore,
        key: VerifierKey,
        origin: str,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.storage = storage
        self.key = key
        self.origin = origin
        self.progress = progress
        self.report = CheckReport()
        self.state = TreeState.empty()
        self.last_good_size = 0
        self.checkpoints = storage.iter_checkpoints()
        self.next_checkpoint: StoredCheckpoint | None = next(self.checkpoints, None)
        # A record log (entry 0 is a genesis record) keeps a derived index of its
        # records; it must match the entries row for row.
        self.records = storage.iter_records()
        self.next_record: RecordRow | None = next(self.records, None)
        self.record_log = self.next_record is not None

    def check_record(self, row: EntryRow) -> None:
        """The index row of entry ``row`` is exactly what its record says."""
        try:
            record = parse_record(parse_log_entry(row.data).envelope.payload)
        except VerificationError as e:
            self.fail(
                "entry-not-record",
                f"entry {row.index} is not a Saksi log entry: {e}",
                index=row.index,
            )
        expected = RecordRow(
            row.index,
            record.subject,
            record.revision,
            record.schema,
            hashlib.sha256(record.payload).digest(),
        )
        if self.next_record != expected:
            found = self.next_record
            self.fail(
                "record-index",
                f"entry {row.index}: the record index "
                + (
                    "has no row for it"
                    if found is None or found.index != row.index
                    else "row differs from the entry"
                ),
                index=row.index,
            )
        self.next_record = next(self.records, None)

    def fail(
        self,
        kind: str,
        message: str,
        *,
        index: int | None = None,
        tile: str | None = None,
        end: int | None = None,
    ) -> None:
        self.report.problems.append(Problem(kind, index, tile, message, end))
        raise _Stop

    def localize(self, low: int, high: int) -> tuple[int, int]:
        """Narrow a bad root over entries [low, high) to one index if possible.

        Stored full level-0 tiles hold the leaf hashes as they were when the tile
        was written: the first stored leaf hash that differs is the bad entry.
        """
        for tile in range(low // TILE_WIDTH, (high - 1) // TILE_WIDTH + 1):
            rows = self.storage.read_tile_rows(0, tile, tile + 1)
            if not rows:
                continue
            first = tile * TILE_WIDTH
            leaves = self.storage.read_leaf_hashes(first, first + TILE_WIDTH)
            hashes = rows[0][1]
            for offset, leaf in enumerate(leaves):
                index = first + offset
                if (
                    low <= index < high
                    and leaf != hashes[32 * offset : 32 * offset + 32]
                ):
                    return index, index + 1
        return low, high

    def check_tiles(self, produced: list[FullTile]) -> None:
        # Stored tiles come ordered by (level, index); produced ones by creation.
        # Compare level by level through a per-level cursor.
        for tile in sorted(produced, key=lambda t: (t.level, t.index)):
            self.compare_tile(tile)
            self.report.tiles_checked += 1

    def compare_tile(self, tile: FullTile) -> None:
        name = f"{tile.level}/{tile.index}"
        rows = self.storage.read_tile_rows(tile.level, tile.index, tile.index + 1)
        if not rows:
            self.fail("tile-missing", f"tile {name} is not stored", tile=name)
        _, hashes, root = rows[0]
        if not hmac.compare_digest(hashes, tile.hashes):
            first = next(
                i
                for i in range(256)
                if hashes[32 * i : 32 * i + 32] != tile.hashes[32 * i : 32 * i + 32]
            )
            index = (tile.index * 256 + first) * 256**tile.level
            self.fail(
                "tile-differs",
                f"tile {name} differs from the entries at hash {first}",
                tile=name,
                index=index,
            )
        if not hmac.compare_digest(root, tile.root):
            self.fail(
                "tile-root-differs", f"stored root of tile {name} is wrong", tile=name
            )

    def check_checkpoints(self, state: TreeState) -> None:
        # run() integrates exactly up to each checkpoint's size, so none is skipped.
        cp = self.next_checkpoint
        if cp is not None and cp.size == state.size:
            self.verify_checkpoint(cp, state.root)
            self.next_checkpoint = next(self.checkpoints, None)

    def verify_checkpoint(self, cp: StoredCheckpoint, root: bytes) -> None:
        where = f"checkpoint at size {cp.size}"
        try:
            checkpoint, _ = verify_checkpoint(cp.note, self.key, self.origin)
        except VerificationError as e:
            self.fail("checkpoint-signature", f"{where}: {e}", index=cp.size)
        if checkpoint.size != cp.size or checkpoint.root_hash != cp.root:
            self.fail(
                "checkpoint-row", f"{where}: row does not match its note", index=cp.size
            )
        if not hmac.compare_digest(root, cp.root):
            low, high = self.localize(self.last_good_size, cp.size)
            span = f"entry {low}" if high == low + 1 else f"entries {low}..{high - 1}"
            self.fail(
                "checkpoint-root",
                f"{where}: entries give root {root.hex()}, signed root is "
                f"{cp.root.hex()}; the change is in {span}",
                index=low,
                end=high,
            )
        self.report.checkpoints_checked += 1
        self.last_good_size = cp.size

    def run(self) -> CheckReport:
        head = self.storage.head()
        self.report.size = head.size
        state = TreeState.empty()
        if self.next_checkpoint is not None and self.next_checkpoint.size == 0:
            self.verify_checkpoint(self.next_checkpoint, state.root)
            self.next_checkpoint = next(self.checkpoints, None)
        expected = 0
        batch: list[bytes] = []
        for row in self.storage.iter_entries():
            if row.index != expected:
                self.fail(
                    "entry-missing",
                    f"entry {expected} is missing (next stored is {row.index})",
                    index=expected,
                )
            if not hmac.compare_digest(hash_leaf(row.data), row.leaf_hash):
                self.fail(
                    "entry-differs",
                    f"entry {row.index}: data does not match its leaf hash",
                    index=row.index,
                )
            if row.leaf_key != leaf_key(row.leaf_hash):
                self.fail(
                    "entry-key",
                    f"entry {row.index}: lookup key does not match its leaf hash",
                    index=row.index,
                )
            if row.index == 0 and not self.record_log:
                self.record_log = _is_genesis(row.data)
            if self.record_log:
                self.check_record(row)
            batch.append(row.leaf_hash)
            expected += 1
            # Integrate up to the next checkpoint boundary so its root can be checked.
            boundary = self.next_checkpoint.size if self.next_checkpoint else None
            if len(batch) >= _BATCH or (boundary is not None and expected == boundary):
                state = self.integrate(state, batch)
                batch = []
        state = self.integrate(state, batch)
        self.state = state
        if self.next_record is not None:
            self.fail(
                "record-index",
                f"the record index has a row for entry {self.next_record.index}, "
                "which is not stored",
                index=self.next_record.index,
            )
        if self.next_checkpoint is not None:
            cp = self.next_checkpoint
            self.fail(
                "entries-truncated",
                f"a checkpoint covers {cp.size} entries, only {expected} are stored",
                index=expected,
            )
        self.check_head(head.size, head.root, head.note, state)
        return self.report

    def integrate(self, state: TreeState, batch: list[bytes]) -> TreeState:
        if not batch:
            return state
        state, full = integrate(state, batch)
        self.check_tiles(full)
        self.report.entries_checked = state.size
        self.check_checkpoints(state)
        if self.progress is not None:
            self.progress(state.size, self.report.size)
        return state

    def check_head(self, size: int, root: bytes, note: bytes, state: TreeState) -> None:
        if state.size != size:
            self.fail(
                "head-size",
                f"tree head says {size} entries, {state.size} stored",
                index=min(size, state.size),
            )
        if not hmac.compare_digest(state.root, root):
            self.fail(
                "head-root", "tree head root differs from the entries", index=size
            )
        cp = StoredCheckpoint(size, root, note, 0)
        self.verify_checkpoint(cp, state.root)
        self.report.checkpoints_checked -= 1  # the head is not a stored checkpoint row
        self.check_extra_tiles(state)

    def check_extra_tiles(self, state: TreeState) -> None:
        level = 0
        while True:
            full = level_width(state.size, level) // TILE_WIDTH
            extra = self.storage.read_tile_rows(level, full, 1 << 62)
            if extra:
                name = f"{level}/{extra[0][0]}"
                self.fail("tile-extra", f"tile {name} lies beyond the tree", tile=name)
            if full == 0:
                return
            level += 1


def _is_genesis(data: bytes) -> bool:
    # Entry 0 of a record log is the genesis record, whatever the index says.
    try:
        record = parse_record(parse_log_entry(data).envelope.payload)
    except VerificationError:
        return False
    return record.schema == "log.genesis/v1"


def check_log(
    storage: WriterStore,
    key: VerifierKey,
    origin: str,
    progress: Callable[[int, int], None] | None = None,
    trusted: Sequence[Checkpoint] = (),
) -> CheckReport:
    """Recompute the log from its entries and compare with everything stored.

    Raises:
        StorageUnavailable: the database cannot be read.
    """
    checker = _Checker(storage, key, origin, progress)
    checker.report.problems += [
        Problem("guards", None, None, line) for line in storage.guard_problems()
    ]
    try:
        checker.run()
    except _Stop:
        return checker.report
    state = checker.state
    reader = NodeReader(state.size, state.partials, storage.read_tile, FullTileCache())
    for checkpoint in trusted:
        problem = rollback_problem(checkpoint, reader, state.root)
        if problem:
            checker.report.problems.append(
                Problem("rollback", checkpoint.size, None, problem)
            )
    return checker.report

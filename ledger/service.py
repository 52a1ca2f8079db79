"""A running record log: the write path plus everything the read API serves.

``RecordService`` owns the storage, the record gate and the ledger of one log, and
answers the questions the HTTP API and the CLIs ask: tiles and entry bundles in the
C2SP tlog-tiles layout (any full or partial tile within the current tree, read
from stored tiles and entries), entries with their records, a subject's history,
proofs, and the key registry as of any size. No HTTP here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.ledger import AppendReceipt, Ledger
from ledger.records import (
    DEFAULT_SKEW,
    RecordGate,
    Submission,
    prepare_submission,
    replay_registry,
)
from ledger.results import ResultsIndex
from ledger.sequencer import SequencerConfig
from ledger.storage.sql import SqlStorage
from ledger.tree.tiles import TILE_WIDTH, level_width
from ledger.witnessing import WitnessEndpoint, Witnessing
from verifier.dsse import Envelope, EnvelopeSignature, envelope_to_json
from verifier.note import NoteSigner, VerifierKey
from verifier.record import LogEntry, Record, parse_log_entry, parse_record
from verifier.registry import KeyRegistry
from verifier.rules.state import ElectionState
from verifier.tiles import format_entry_bundle

# Decoded entries kept for reads (results, provenance). Small on purpose: each
# decoded form is dozens of objects the garbage collector scans on every full
# collection (20,000 of them made 300-400 ms pauses), and decoding one again
# costs 40-150 us.
ENTRY_CACHE = 1_024

__all__ = ["EntryView", "RecordService"]


@dataclass(frozen=True, slots=True)
class EntryView:
    """One logged entry, decoded."""

    index: int
    leaf_hash: bytes
    data: bytes
    entry: LogEntry
    record: Record

    def to_json(self) -> dict[str, Any]:
        """The entry as the API shows it."""
        return {
            "index": self.index,
            "leaf_hash": self.leaf_hash.hex(),
            "logged_at": self.entry.logged_at,
            "envelope": envelope_to_json(self.entry.envelope),
            "record": {
                "schema": self.record.schema,
                "subject": self.record.subject,
                "revision": self.record.revision,
                "prev": self.record.prev,
                "issued_at": self.record.issued_at,
                "payload_hash": self.record.payload_hash,
            },
            "signers": [s.keyid for s in self.entry.envelope.signatures],
        }


def decode_stored(data: bytes) -> tuple[LogEntry, Record]:
    """Decode an entry this log stored: its envelope and its record.

    Every entry was checked in full when it was admitted (canonical form,
    schema, signatures), and ``saksi check`` and the observers' audit check
    every stored byte again, so reads skip the canonical-form re-check: a
    plain JSON decode is about four times faster. Anything that does not
    decode plainly, or carries evidence, takes the strict parsers, whose
    errors then say what is wrong.

    Raises:
        MalformedInput: the stored bytes are not a well-formed entry.
    """
    try:
        raw = json.loads(data)
        wrapped = raw["envelope"]
        envelope = Envelope(
            wrapped["payloadType"],
            base64.b64decode(wrapped["payload"], validate=True),
            tuple(
                EnvelopeSignature(s["keyid"], base64.b64decode(s["sig"], validate=True))
                for s in wrapped["signatures"]
            ),
        )
        fields = json.loads(envelope.payload)
        if "evidence" not in fields and isinstance(fields["body"], dict):
            record = Record(
                fields["schema"],
                fields["subject"],
                fields["revision"],
                fields["prev"],
                fields["issued_at"],
                fields["body"],
                fields.get("reason"),
                (),
                envelope.payload,
            )
            return LogEntry(envelope, raw["logged_at"]), record
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    entry = parse_log_entry(data)
    return entry, parse_record(entry.envelope.payload)


class RecordService:
    """One record log, opened on a database, with its writer running."""

    def __init__(
        self,
        storage: SqlStorage,
        signer: NoteSigner,
        verifier_key: VerifierKey,
        origin: str,
        *,
        clock: Callable[[], float],
        config: SequencerConfig | None = None,
        skew: dt.timedelta = DEFAULT_SKEW,
        max_age: dt.timedelta | None = None,
    ) -> None:
        self.storage = storage
        # The issued_at window: how far ahead of this clock, how far behind.
        self.skew = skew
        self.max_age = max_age
        self.origin = origin
        self.verifier_key = verifier_key
        self.clock = clock
        # Empty until the writer starts: it replays the registry from entries
        # it has proven against the signed tree (``Ledger.start``).
        self.gate = RecordGate(storage, KeyRegistry(), ElectionState())
        self._registry_lock = threading.Lock()
        self._registry_cache: tuple[int, KeyRegistry] | None = None
        # Logged entries never change: the decoded ones most recently read are
        # kept (read-only: callers must not change what they get).
        self._entries: OrderedDict[int, EntryView] = OrderedDict()
        self._entries_lock = threading.Lock()
        # Recap staleness and corrections per region, derived from the log.
        self.results_index = ResultsIndex(self)
        self.ledger = Ledger(
            storage,
            signer,
            verifier_key,
            origin,
            clock=clock,
            config=config,
            gate=self.gate,
        )
        self.witnessing: Witnessing | None = None

    def start(self) -> None:
        """Check storage and start the writer (see ``Ledger.start``)."""
        self.ledger.start()

    def witness_with(self, endpoints: Sequence[WitnessEndpoint]) -> None:
        """Have every new checkpoint cosigned by ``endpoints`` (after ``start``).

        The first round runs before this returns: a witness that has cosigned a
        larger tree than the log holds stops it here, before any write
        (``IntegrityFailure``). ``checkpoint`` serves the witnessed note from
        then on.

        Raises:
            IntegrityFailure: a witness holds a larger tree (a rollback).
        """
        head = self.ledger

        def current() -> tuple[int, bytes]:
            now = head.head
            return now.size, now.note

        witnessing = Witnessing(
            current,
            lambda old, new: head.consistency_proof(old, new),
            self.verifier_key,
            self.origin,
            endpoints,
        )
        size, note = current()
        witnessing.round(size, note)
        ahead = witnessing.ahead(size)
        if ahead:
            witnessing.stop()
            error = IntegrityFailure(
                f"the log is at size {size} but {'; '.join(ahead)}: the "
                "database was rolled back, or the log key signed another tree"
            )
            self.ledger.halt(error)
            raise error
        self.witnessing = witnessing
        witnessing.start(witnessed=note)

    def close(self) -> None:
        """Stop the writer and close the database."""
        if self.witnessing is not None:
            self.witnessing.stop()
        try:
            self.ledger.close()
        finally:
            self.storage.close()

    # -- writes -----------------------------------------------------------------

    def prepare(self, envelope: bytes | dict[str, Any]) -> Submission:
        """Check an envelope (``prepare_submission`` with this log's keys and clock).

        Raises:
            VerificationError, EntryRejected: see ``prepare_submission``.
        """
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return prepare_submission(
            envelope, self.gate.public_key, now, self.skew, self.max_age
        )

    async def submit(self, submission: Submission) -> AppendReceipt:
        """Append one checked submission; the receipt once it is durable.

        Raises:
            Whatever the gate refuses it with, or Pushback / StorageUnavailable.
        """
        return await self.ledger.submit_async(submission)

    # -- reads ------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Entries in the log now."""
        return self.ledger.size

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint note.

        With witnesses configured, the latest witnessed one (with its
        cosignatures), once there is one.
        """
        if self.witnessing is not None:
            witnessed = self.witnessing.published()
            if witnessed is not None:
                return witnessed
        return self.ledger.checkpoint()

    def tile(self, level: int, index: int, width: int) -> bytes:
        """Hash tile ``level/index`` of ``width`` hashes (256 = full).

        Raises:
            OutOfRange: the tile is not (or not that wide) in the current tree.
        """
        available = level_width(self.size, level) - index * TILE_WIDTH
        if index < 0 or width < 1 or width > min(TILE_WIDTH, available):
            raise OutOfRange(f"tile {level}/{index} of width {width} is not published")
        if width == TILE_WIDTH:
            return self.ledger.full_tile(level, index)
        start = index * TILE_WIDTH
        if level == 0:
            hashes = self.storage.read_leaf_hashes(start, start + width)
        else:
            hashes = [
                root
                for _, _, root in self.storage.read_tile_rows(
                    level - 1, start, start + width
                )
            ]
        if len(hashes) != width:
            raise OutOfRange(f"tile {level}/{index} is incomplete in storage")
        return b"".join(hashes)

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle ``index`` with ``width`` entries (256 = full).

        Raises:
            OutOfRange: the bundle is not (or not that wide) in the current tree.
        """
        available = self.size - index * TILE_WIDTH
        if index < 0 or width < 1 or width > min(TILE_WIDTH, available):
            raise OutOfRange(f"entry bundle {index} of width {width} is not published")
        start = index * TILE_WIDTH
        rows = self.storage.read_entries(start, start + width)
        return format_entry_bundle([r.data for r in rows])

    def entry_bytes(self, index: int) -> bytes:
        """The exact stored bytes of entry ``index``.

        Raises:
            OutOfRange: no such entry.
        """
        rows = self.storage.read_entries(index, index + 1)
        if not rows:
            raise OutOfRange(f"entry {index} is not stored")
        return rows[0].data

    def entry(self, index: int) -> EntryView:
        """Entry ``index``, decoded.

        Raises:
            OutOfRange: no such entry.
        """
        if not 0 <= index < self.size:
            raise OutOfRange(f"entry {index} is beyond the log size {self.size}")
        with self._entries_lock:
            cached = self._entries.get(index)
            if cached is not None:
                self._entries.move_to_end(index)
                return cached
        row = self.storage.read_entries(index, index + 1)[0]
        entry, record = decode_stored(row.data)
        view = EntryView(index, row.leaf_hash, row.data, entry, record)
        with self._entries_lock:
            self._entries[index] = view
            while len(self._entries) > ENTRY_CACHE:
                self._entries.popitem(last=False)
        return view

    def entries(self, indices: Sequence[int]) -> dict[int, EntryView]:
        """Entries at ``indices``, decoded (one read for all not in the cache).

        Raises:
            OutOfRange: an index beyond the log, or not stored.
        """
        size = self.size
        found: dict[int, EntryView] = {}
        with self._entries_lock:
            for index in indices:
                cached = self._entries.get(index)
                if cached is not None:
                    self._entries.move_to_end(index)
                    found[index] = cached
        missing = [i for i in indices if i not in found]
        if any(not 0 <= i < size for i in missing):
            raise OutOfRange(f"an entry is beyond the log size {size}")
        for row in self.storage.read_entries_at(missing):
            entry, record = decode_stored(row.data)
            found[row.index] = EntryView(
                row.index, row.leaf_hash, row.data, entry, record
            )
        if len(found) < len(set(indices)):
            raise OutOfRange("an entry is not stored")
        with self._entries_lock:
            for index in missing:
                self._entries[index] = found[index]
            while len(self._entries) > ENTRY_CACHE:
                self._entries.popitem(last=False)
        return found

    def index_of_leaf(self, leaf_hash: bytes) -> int:
        """The index of the entry with ``leaf_hash``.

        Raises:
            OutOfRange: no entry has it.
        """
        found = self.storage.find_leaf_hashes([leaf_hash])
        index = found.get(leaf_hash)
        if index is None or index >= self.size:
            raise OutOfRange(f"no entry has leaf hash {leaf_hash.hex()}")
        return index

    def history(self, subject: str) -> list[EntryView]:
        """Every logged revision of ``subject``, oldest first."""
        return [self.entry(i) for i in self.storage.subject_indices(subject)]

    def head_of(self, subject: str) -> tuple[int, str] | None:
        """The subject's latest (revision, payload hash), or None if it has none."""
        indices = self.storage.subject_indices(subject)
        if not indices:
            return None
        record = self.entry(indices[-1]).record
        return record.revision, record.payload_hash

    def keys_json(self, size: int | None = None) -> dict[str, Any]:
        """The key registry as of ``size`` (default: now), as the API lists it.

        Raises:
            OutOfRange: ``size`` is beyond the log.
        """
        tree_size = self.size if size is None else size
        registry = self.registry_at(tree_size)
        threshold = registry.genesis.policy.threshold if registry.genesis else 0
        return {
            "tree_size": tree_size,
            "threshold": threshold,
            "keys": [
                {
                    "keyid": g.keyid,
                    "public_key": base64.b64encode(g.public_key).decode(),
                    "role": g.role,
                    "scope": g.scope,
                    "holder": g.holder,
                    "granted_at": g.granted_at,
                    "expires_at": g.expires_at,
                    "revoked_at": g.revoked_at,
                }
                for g in sorted(registry.grants.values(), key=lambda g: g.granted_at)
            ],
        }

    def registry_at(self, size: int) -> KeyRegistry:
        """The key registry as it stood after the first ``size`` entries.

        Replays the registry records of the log, starting from the last
        registry this service built when that is not newer (a copy of it, so a
        result handed out is never changed afterwards).

        Raises:
            OutOfRange: ``size`` is beyond the log.
            IntegrityFailure: a stored registry record no longer replays.
        """
        if not 0 <= size <= self.size:
            raise OutOfRange(f"size {size} is beyond the log size {self.size}")
        with self._registry_lock:
            cached = self._registry_cache
        if cached is not None and cached[0] <= size:
            start, registry = cached[0], cached[1].copy()
        else:
            start, registry = 0, KeyRegistry()
        replay_registry(self.storage, registry, start, size, prove=self.ledger.prover())
        with self._registry_lock:
            if self._registry_cache is None or self._registry_cache[0] <= size:
                self._registry_cache = (size, registry.copy())
        return registry

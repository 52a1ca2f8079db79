"""Logged entries, decoded and proven, and what the record index says of them.

``EntryReader`` reads entries for the record and results routes: each entry's
bytes are proven by an inclusion proof against the latest signed tree before
they are decoded (``verifier.record.decode_logged_entry``), and the decoded
entries most recently read are kept. The record index (which entries hold a
subject) points at entries; every entry it names is proven and must hold that
subject, so an edited index can hide an entry from these reads but never show
one the log does not hold (hiding is what the writer's seal and ``saksi
check`` catch).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import IntegrityFailure, OutOfRange
from ledger.read.reader import LogReader
from ledger.storage.base import RecordIndexStore
from verifier.record import LogEntry, Record, decode_logged_entry

__all__ = ["ENTRY_CACHE", "EntryReader", "EntryView", "require_subject"]

# Decoded entries kept for reads (results, provenance). Small on purpose: each
# decoded form is dozens of objects the garbage collector scans on every full
# collection (BENCHMARKS.md, "Decoding logged entries"), and decoding one again
# is cheap.
ENTRY_CACHE = 1_024


@dataclass(frozen=True, slots=True)
class EntryView:
    """One logged entry, proven and decoded."""

    index: int
    leaf_hash: bytes
    data: bytes
    entry: LogEntry
    record: Record


class EntryReader:
    """Proven, decoded entries of one log, and subjects' revisions."""

    def __init__(self, reader: LogReader, index: RecordIndexStore) -> None:
        self.reader = reader
        self.index = index
        # Logged entries never change: the decoded ones most recently read are
        # kept (read-only: callers must not change what they get).
        self._cache: OrderedDict[int, EntryView] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, index: int) -> EntryView:
        """Entry ``index``, proven and decoded.

        Raises:
            OutOfRange: no such entry in the signed tree.
            IntegrityFailure: the stored entry is not the one the tree holds.
        """
        size = self.reader.size
        if not 0 <= index < size:
            raise OutOfRange(f"entry {index} is beyond the log size {size}")
        return self.entries([index])[index]

    def entries(self, indices: Sequence[int]) -> dict[int, EntryView]:
        """Entries at ``indices``, proven and decoded (one read for all not cached).

        Raises:
            OutOfRange: an index beyond the signed tree, or not stored.
            IntegrityFailure: a stored entry is not the one the tree holds.
        """
        found: dict[int, EntryView] = {}
        with self._lock:
            for index in indices:
                cached = self._cache.get(index)
                if cached is not None:
                    self._cache.move_to_end(index)
                    found[index] = cached
        missing = sorted({i for i in indices if i not in found})
        if not missing:
            return found
        tree = self.reader.tree()
        if any(not 0 <= i < tree.size for i in missing):
            raise OutOfRange(f"an entry is beyond the log size {tree.size}")
        prove = self.reader.prover(tree)
        for row in self.reader.store.read_entries_at(missing):
            leaf_hash = prove(row.index, row.data)
            entry, record = decode_logged_entry(row.data)
            found[row.index] = EntryView(row.index, leaf_hash, row.data, entry, record)
        if any(i not in found for i in missing):
            raise OutOfRange("an entry is not stored")
        with self._lock:
            for index in missing:
                self._cache[index] = found[index]
            while len(self._cache) > ENTRY_CACHE:
                self._cache.popitem(last=False)
        return found

    def history(self, subject: str, size: int | None = None) -> list[EntryView]:
        """Every logged revision of ``subject`` (within ``size``), oldest first.

        Raises:
            IntegrityFailure: the record index names an entry of another subject.
        """
        limit = self.reader.size if size is None else size
        indices = [i for i in self.index.subject_indices(subject) if i < limit]
        return self._of(subject, indices)

    def head_of(self, subject: str) -> tuple[int, str] | None:
        """The subject's latest (revision, payload hash), or None if it has none.

        Raises:
            IntegrityFailure: the record index names an entry of another subject.
        """
        size = self.reader.size
        indices = [i for i in self.index.subject_indices(subject) if i < size]
        if not indices:
            return None
        record = self._of(subject, indices[-1:])[0].record
        return record.revision, record.payload_hash

    def _of(self, subject: str, indices: list[int]) -> list[EntryView]:
        views = self.entries(indices)
        out = [views[i] for i in indices]
        for view in out:
            require_subject(view, subject)
        return out


def require_subject(view: EntryView, subject: str) -> None:
    """The entry the record index lists under ``subject`` holds that subject.

    Raises:
        IntegrityFailure: it holds another (an edited index).
    """
    if view.record.subject != subject:
        raise IntegrityFailure(
            f"the record index lists entry {view.index} under {subject!r}, "
            f"which holds {view.record.subject!r}"
        )

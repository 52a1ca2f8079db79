"""What the results reads need that the log says only across many entries.

``ResultsIndex`` follows the log (recaps and later revisions, read from the
record index and proven entries) and keeps, for every recap subject, whether
its latest revision is stale, and every correction filed under each region.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ledger.read.entries import EntryReader
from ledger.storage.rows import RecordRow
from verifier.election import LEVELS, RECAP, child_subject, recap_subject

if TYPE_CHECKING:
    from verifier.record import Record

__all__ = ["ResultsIndex"]

_PARENT_LENGTH = {13: 10, 10: 6, 6: 4, 4: 2, 2: 0}
_LEVEL_LENGTH = {name: length for length, name in LEVELS.items()}
_CHUNK = 4096  # changed records read and decided at once while catching up


def _split(subject: str) -> tuple[str, str, str] | None:
    """(kind, ballot, region code) of a ``results/`` or ``recaps/`` subject."""
    parts = subject.split("/")
    if len(parts) != 3 or parts[0] not in ("results", "recaps"):
        return None
    code = "" if parts[2] == "national" else parts[2]
    return parts[0], parts[1], code


def _named(record: Record) -> list[tuple[str, bytes]]:
    """(subject, payload hash) of each child a logged recap names."""
    _, ballot, region = _split(record.subject)  # type: ignore[misc]
    out = []
    for code, digest in record.body["children"].items():
        subject = child_subject(ballot, region, code)
        if subject is not None:
            out.append((subject, bytes.fromhex(digest)))
    return out


class ResultsIndex:
    """What the results reads need that the log only says across many entries.

    Derived data, kept in memory and brought up to the log's size before each
    read by reading only the record rows logged since (recaps and later
    revisions): for every recap subject, whether its latest revision is stale
    (it names a child revision since superseded, or a child recap that is
    itself stale), and every correction filed under each region it is in.

    A recap goes stale when a child it names gets a new revision; a stale
    recap makes stale each recap above it that names it, up to the national
    one. Nothing becomes current again except by a new revision, which is
    decided afresh from the heads of the children it names.
    """

    def __init__(self, entries: EntryReader) -> None:
        self._entries = entries
        self._lock = threading.Lock()
        self._built = 0
        self._heads: dict[str, int] = {}  # recap subject -> index of its head
        self._stale: dict[str, bool] = {}  # recap subject -> is its head stale
        # (ballot, region) -> (index, subject, revision) of each later revision
        # of a form or recap in that region or below, in log order.
        self._corrections: dict[tuple[str, str], list[tuple[int, str, int]]] = {}

    def stale(self, subject: str) -> bool:
        """Is the latest revision of recap ``subject`` stale (as of the catch-up)?"""
        return self._stale.get(subject, False)

    def corrections(self, ballot: str, region: str) -> list[tuple[int, str, int]]:
        """(index, subject, revision) of every later revision under ``region``."""
        return list(self._corrections.get((ballot, region), ()))

    def catch_up(self) -> None:
        """Read the records logged since the last catch-up."""
        with self._lock:
            size = self._entries.reader.size
            while self._built < size:
                end = min(size, self._built + _CHUNK * 16)
                self._take(self._entries.index.changed_records(self._built, end), end)
                self._built = end

    def _take(self, rows: list[RecordRow], end: int) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = [r for r in rows[start : start + _CHUNK] if _split(r.subject)]
            recaps = self._entries.entries(
                [r.index for r in chunk if r.schema == RECAP.name]
            )
            named = {index: _named(view.record) for index, view in recaps.items()}
            wanted = {subject for children in named.values() for subject, _ in children}
            heads = self._entries.index.record_heads(sorted(wanted), below=end)
            for row in chunk:
                _, ballot, code = _split(row.subject)  # type: ignore[misc]
                if row.index in named:
                    self._recap(row, named[row.index], heads)
                if row.revision > 0:
                    self._superseded(ballot, code)
                    self._file(row, ballot, code)

    def _recap(
        self,
        row: RecordRow,
        named: list[tuple[str, bytes]],
        heads: dict[str, RecordRow],
    ) -> None:
        stale = False
        for subject, digest in named:
            head = heads.get(subject)
            if (head is not None and head.payload_hash != digest) or self._stale.get(
                subject, False
            ):
                stale = True
                break
        self._heads[row.subject] = row.index
        self._stale[row.subject] = stale

    def _superseded(self, ballot: str, code: str) -> None:
        # A new revision of this form or recap: the recap above that names it,
        # and every recap above that one naming it in turn, are stale now.
        while True:
            length = _PARENT_LENGTH.get(len(code))
            if length is None:
                return
            parent = code[:length]
            subject = recap_subject(ballot, parent)
            index = self._heads.get(subject)
            if index is None or self._stale.get(subject, False):
                return
            children = self._entries.entry(index).record.body["children"]
            if code not in children:
                return
            self._stale[subject] = True
            code = parent

    def _file(self, row: RecordRow, ballot: str, code: str) -> None:
        item = (row.index, row.subject, row.revision)
        for n in {10, 6, 4, 2, 0}:
            if n <= len(code):
                self._corrections.setdefault((ballot, code[:n]), []).append(item)

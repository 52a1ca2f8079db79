"""Results of any region and ballot, with provenance, flags and completeness.

Read straight from the log: a region's own recap (its latest revision, its
``recap-sum`` flags, the children it names that have since been superseded and
the registry's children it does not name) and each of the region's children as
the log has it now (the latest revision of the tally or recap, who signed it, at
which stage, its flags). A recap is stale when any revision it rests on, directly
or through the recaps below it, has been superseded. Every number comes with the
entry that says it, so a reader can fetch and verify that entry (and its
inclusion proof) independently.
"""

from __future__ import annotations

import bisect
import threading
from typing import TYPE_CHECKING, Any

from ledger.storage.rows import RecordRow
from verifier.election import (
    LEVELS,
    RECAP,
    child_subject,
    level_of,
    recap_subject,
)
from verifier.rules import differences, recap_flags, tally_flags, totals_of

if TYPE_CHECKING:
    from ledger.service import EntryView, RecordService
    from verifier.record import Record

__all__ = ["ResultsIndex", "ResultsReader"]

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

    def __init__(self, service: RecordService) -> None:
        self._service = service
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
            size = self._service.size
            while self._built < size:
                end = min(size, self._built + _CHUNK * 16)
                self._take(self._service.storage.changed_records(self._built, end))
                self._built = end

    def _take(self, rows: list[RecordRow]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = [r for r in rows[start : start + _CHUNK] if _split(r.subject)]
            recaps = self._service.entries(
                [r.index for r in chunk if r.schema == RECAP.name]
            )
            named = {index: _named(view.record) for index, view in recaps.items()}
            wanted = {subject for children in named.values() for subject, _ in children}
            heads = self._service.storage.record_heads(sorted(wanted))
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
            children = self._service.entry(index).record.body["children"]
            if code not in children:
                return
            self._stale[subject] = True
            code = parent

    def _file(self, row: RecordRow, ballot: str, code: str) -> None:
        item = (row.index, row.subject, row.revision)
        for n in {10, 6, 4, 2, 0}:
            if n <= len(code):
                self._corrections.setdefault((ballot, code[:n]), []).append(item)


class ResultsReader:
    """Answers ``region(ballot, code)`` from one record log."""

    def __init__(self, service: RecordService) -> None:
        self.service = service
        self.index = service.results_index
        self.index.catch_up()

    def _summary(self, view: EntryView, ballot: str) -> dict[str, Any]:
        record = view.record
        body = record.body
        item: dict[str, Any] = {
            "subject": record.subject,
            "index": view.index,
            "revision": record.revision,
            "payload_hash": record.payload_hash,
            "signers": [s.keyid for s in view.entry.envelope.signatures],
            "logged_at": view.entry.logged_at,
            "totals": totals_of(body),
        }
        if record.schema == "results.tally/v1":
            item["stage"] = body["stage"]
            item["flags"] = [f.to_json() for f in tally_flags(body, ballot)]
            if "form" in body:
                item["form"] = body["form"]
        if record.reason is not None:
            item["reason"] = record.reason
        if "correction" in body:
            item["correction"] = body["correction"]
        return item

    def region(self, ballot: str, region: str) -> dict[str, Any]:
        """The results of ``region`` ("" national) on ``ballot``.

        Raises:
            KeyError: ``region`` is not a recap level (2, 4, 6, 10 digits or "").
        """
        level_of(region)
        return self._views(ballot, [region], full=True)[0]

    def below(
        self, ballot: str, region: str, level: str, after: str = "", limit: int = 100
    ) -> dict[str, Any]:
        """What a recap builder needs of every region at ``level`` under ``region``.

        One page of regions in code order (codes after ``after``, at most
        ``limit``; ``total`` counts them all), each with its recap's state
        (revision, payload hash, stale and unnamed children) and each child's
        latest revision and totals: the compact form of ``region``, read for
        many regions at once.

        Raises:
            KeyError: ``region`` or ``level`` is not a recap level, or ``level``
                is above ``region``.
        """
        length = _LEVEL_LENGTH[level]
        level_of(region)
        if length < len(region):
            raise KeyError(level)
        election = self.service.gate.election
        codes = [region]
        while codes and len(codes[0]) < length:
            codes = [c for code in codes for c in election.children_of(code)]
        total = len(codes)
        # In code order (each parent's children in order, parents in order).
        start = bisect.bisect_right(codes, after) if after else 0
        page = codes[start : start + limit]
        return {
            "ballot": ballot,
            "region": region or "national",
            "level": level,
            "total": total,
            "regions": self._views(ballot, page, full=False),
            "next": page[-1] if start + len(page) < total else None,
        }

    def _views(
        self, ballot: str, regions: list[str], *, full: bool
    ) -> list[dict[str, Any]]:
        # Every head the views need in one lookup, every entry in one read.
        election = self.service.gate.election
        listed: dict[str, list[tuple[str, str]]] = {}
        for region in regions:
            pairs = [
                (c, child_subject(ballot, region, c))
                for c in election.children_of(region)
            ]
            listed[region] = [(c, s) for c, s in pairs if s is not None]
        own = {region: recap_subject(ballot, region) for region in regions}
        wanted = [s for pairs in listed.values() for _, s in pairs] + list(own.values())
        heads = self.service.storage.record_heads(sorted(set(wanted))) if wanted else {}
        views = self.service.entries([row.index for row in heads.values()])
        return [
            self._view(ballot, region, listed[region], heads, views, own[region], full)
            for region in regions
        ]

    def _view(
        self,
        ballot: str,
        region: str,
        listed: list[tuple[str, str]],
        heads: dict[str, RecordRow],
        views: dict[int, EntryView],
        own_subject: str,
        full: bool,
    ) -> dict[str, Any]:
        children = []
        current: dict[str, RecordRow] = {}
        for code, subject in listed:
            row = heads.get(subject)
            if row is None:
                children.append({"code": code, "subject": subject, "status": "missing"})
                continue
            current[code] = row
            view = views[row.index]
            if full:
                summary = self._summary(view, ballot)
            else:
                summary = {
                    "subject": subject,
                    "revision": row.revision,
                    "payload_hash": row.payload_hash.hex(),
                    "totals": totals_of(view.record.body),
                }
            children.append({"code": code, "status": "present", **summary})
        counts = self.service.gate.election.carries_candidates(ballot, region)
        recap: dict[str, Any] | None = None
        own = heads.get(own_subject)
        if own is not None:
            view = views[own.index]
            body = view.record.body
            named = {code: bytes.fromhex(h) for code, h in body["children"].items()}
            stale = sorted(
                code
                for code, digest in named.items()
                if code in current
                and (
                    current[code].payload_hash != digest
                    or self.index.stale(current[code].subject)
                )
            )
            state = {
                "stale_children": stale,
                "unnamed_children": sorted({c for c, _ in listed} - set(named)),
                "stale": bool(stale),
            }
            if full:
                recap = {
                    **self._summary(view, ballot),
                    "flags": [
                        f.to_json()
                        for f in recap_flags(
                            body,
                            self._bodies(
                                named,
                                {
                                    row.payload_hash: views[row.index]
                                    for row in current.values()
                                },
                            ),
                            counts,
                        )
                    ],
                    **state,
                }
            else:
                recap = {
                    "subject": own_subject,
                    "revision": own.revision,
                    "payload_hash": own.payload_hash.hex(),
                    **state,
                }
        present = len(current)
        view_of: dict[str, Any] = {
            "ballot": ballot,
            "region": region or "national",
            "level": level_of(region),
            # False above the candidate lists: the recap folds candidates into
            # their parties (see verifier.rules.fold_totals).
            "counts_candidates": counts,
            "recap": recap,
            "children": children,
            "completeness": {
                "listed": len(listed),
                "present": present,
                "missing": len(listed) - present,
                "flagged": sum(1 for c in children if c.get("flags")),
            },
        }
        if not full:
            view_of["code"] = region
        return view_of

    def _bodies(
        self, named: dict[str, bytes], current: dict[bytes, EntryView]
    ) -> list[dict[str, Any]]:
        """The bodies of the child revisions a recap names (those in the log).

        ``current`` holds the children already read for the view (by payload
        hash): a recap that is not stale names only those.
        """
        other = [h for h in named.values() if h not in current]
        rows = self.service.storage.records_by_payload(other) if other else {}
        views = self.service.entries([row.index for row in rows.values()])
        found = {**current, **{h: views[row.index] for h, row in rows.items()}}
        return [found[h].record.body for h in named.values() if h in found]

    def corrections(self, ballot: str, region: str) -> dict[str, Any]:
        """Every correction of a form or recap in ``region`` ("" national), in order.

        A correction is any later revision of a tally (authority correction,
        recount) or a recap (re-signed after a child changed): with who signed it,
        when, why (reason code, reference, free text), and what changed against
        the revision it supersedes.
        """
        level_of(region)  # a recap level, or KeyError
        rows = [
            RecordRow(index, subject, revision, "", b"")
            for index, subject, revision in self.index.corrections(ballot, region)
        ]
        items = []
        for row in sorted(rows, key=lambda r: r.index):
            view = self.service.entry(row.index)
            indices = self.service.storage.subject_indices(row.subject)
            before = self.service.entry(indices[row.revision - 1]).record.body
            after = view.record.body
            item = self._summary(view, ballot)
            item["changed"] = [
                {"where": where, "before": old, "after": new}
                for where, old, new in differences(
                    totals_of(before), totals_of(after), "totals"
                )
            ]
            item["supersedes"] = indices[row.revision - 1]
            items.append(item)
        return {
            "ballot": ballot,
            "region": region or "national",
            "corrections": items,
        }

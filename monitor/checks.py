"""The monitor's checks of each new entry, beyond the audit's own.

The audit (``verifier.fullaudit``) decides each entry as an observer's audit
would; its findings for the entry come here, and a write the key registry did
not allow (a revoked key's above all) or any other failed check is an alert.
Then the record itself, against what came before it (kept in the audit's own
SQLite store, so a restart loses nothing and commits with the audit):

* a correction of a form or recap the recap above had already named
  (``changed-under-signed-recap``), a total that went down with no correction
  on record, a machine reading the officers' confirmation differs from beyond
  the thresholds (``verifier.rules.watch`` decides each);
* a subject revised more than ``max_revisions`` times; a results record logged
  outside every window of the timetable that lists its schema;
* one key writing in more than ``key_max_regions`` regions;
* corrections concentrated in one province or by one key, over a sliding
  window of log time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, Protocol

from monitor.alerting import Alert
from monitor.config import Thresholds, Window
from verifier.election import RECAP, TALLY
from verifier.errors import VerificationError
from verifier.fullaudit import NOT_FAILURES, AuditStore
from verifier.fullaudit.examiner import Examined
from verifier.fullaudit.report import Finding
from verifier.record import Record, parse_record, parse_timestamp
from verifier.rules.watch import (
    parent_recap,
    reading_differences,
    region_of,
    total_went_down,
)

__all__ = ["EventSink", "RecordChecks"]

_RESULTS = frozenset({TALLY.name, RECAP.name})
# Audit checks that never fail a log by themselves (flags), and so do not alert.
_FLAGS = NOT_FAILURES

_TABLES = (
    # The entries that are machine readings (an officers' confirmation is
    # compared with the reading it revises); the figures of every revision are
    # the audit's own (``AuditStore.figures``).
    "CREATE TABLE IF NOT EXISTS monitor_readings (idx INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS monitor_key_regions (keyid TEXT, region TEXT, "
    "PRIMARY KEY (keyid, region)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS monitor_corrections (idx INTEGER PRIMARY KEY, "
    "logged REAL, province TEXT, keyid TEXT)",
)


class EventSink(Protocol):
    """Where the checks raise their alerts (an ``AlertBook``, or a buffer)."""

    def event(self, alert: Alert) -> None:
        """``alert`` happened."""
        ...


class RecordChecks:
    """Decides each new entry's alerts, in log order."""

    def __init__(
        self,
        store: AuditStore,
        thresholds: Thresholds,
        timetable: Sequence[Window],
        book: EventSink,
    ) -> None:
        self._store = store
        self._db = db = store.db
        self._limits = thresholds
        self._timetable = tuple(timetable)
        self._book = book
        for statement in _TABLES:
            db.execute(statement)
        # How many regions each key has written in, and the (key, region)
        # pairs met in this process (a cache of the table: a few per key).
        self._regions_of: dict[str, int] = {}
        self._seen: set[tuple[str, str]] = set()
        # (log time, province, keyid) of each correction within the window,
        # kept in the store too (a restart or a rolled-back step loses none).
        self._recent: deque[tuple[float, str, str]] = deque(
            db.execute(
                "SELECT logged, province, keyid FROM monitor_corrections ORDER BY idx"
            ).fetchall()
        )

    def see(self, examined: Examined, findings: Sequence[Finding]) -> None:
        """Check the entry ``examined`` (already applied by the auditor)."""
        for finding in findings:
            self._finding(finding)
        record = examined.record
        if record is None or record.schema not in _RESULTS:
            return
        region = region_of(record.subject)
        if region is None:
            return
        index, subject = examined.index, record.subject
        body = record.body
        logged = None
        if self._timetable or record.revision > 0:  # only these read the time
            try:
                logged = parse_timestamp(examined.logged_at, "logged_at")
            except (ValueError, VerificationError):
                logged = None
        self._timetable_check(index, subject, record.schema, logged)
        if record.revision > self._limits.max_revisions:
            self._event(
                "many-revisions",
                f"{subject} has {record.revision + 1} revisions (more than "
                f"{self._limits.max_revisions + 1})",
                subject,
                index=index,
                subject=subject,
                revision=record.revision,
            )
        if record.revision > 0:
            self._correction(examined, record, region, logged)
            before = self._revised(record)
            if before is not None:
                self._compare(index, subject, *before, _later(examined))
        for keyid in examined.signers:
            self._regions(keyid, region, index)
        if body.get("stage") == "machine_reading":
            self._db.execute("INSERT INTO monitor_readings VALUES (?)", (index,))

    def _revised(self, record: Record) -> tuple[str | None, dict[str, Any]] | None:
        """(stage, figures) of the revision ``record`` revises, or None.

        None unless the audit kept its figures: a form or recap of the same
        subject, in the log before it.
        """
        if record.prev is None:
            return None
        kept = self._store.figures(bytes.fromhex(record.prev))
        if kept is None or kept[1] != record.subject or kept[2] is None:
            return None  # a broken chain: the audit's finding says so
        reading = self._db.execute(
            "SELECT 1 FROM monitor_readings WHERE idx = ?", (kept[0],)
        ).fetchone()
        return ("machine_reading" if reading else None), json.loads(kept[2])

    # -- the checks ----------------------------------------------------------------

    def _finding(self, finding: Finding) -> None:
        if finding.check in _FLAGS:
            return
        where = {"index": finding.index, "subject": finding.subject}
        if finding.check == "authorization":
            revoked = finding.rule == "key-revoked"
            self._event(
                "revoked-key-write" if revoked else "unauthorized-write",
                f"entry {finding.index} was written by "
                + ("a revoked key" if revoked else "keys the registry did not allow")
                + f": {finding.detail[:200]}",
                f"entry {finding.index}",
                **where,
                rule=finding.rule,
            )
            return
        self._event(
            "audit-finding",
            f"entry {finding.index} fails the audit's {finding.check} check: "
            f"{finding.detail[:200]}",
            f"{finding.check} entry {finding.index}",
            **where,
            check=finding.check,
        )

    def _timetable_check(
        self, index: int, subject: str, schema: str, logged: dt.datetime | None
    ) -> None:
        windows = [w for w in self._timetable if schema in w.schemas]
        if not windows or logged is None:
            return
        if not any(w.holds(logged, schema) for w in windows):
            self._event(
                "outside-timetable",
                f"{schema} {subject} was logged at {logged.isoformat()}, outside "
                f"every window that allows it ({', '.join(w.name for w in windows)})",
                subject,
                index=index,
                subject=subject,
            )

    def _compare(
        self,
        index: int,
        subject: str,
        stage: str | None,
        before: dict[str, object],
        body: dict[str, object],
    ) -> None:
        # ``body``: the later revision's figures, its stage and, if it has
        # one, its correction. A machine reading's figures are provisional:
        # the officers' own confirmation may lower them (that is what it is for).
        went = None if stage == "machine_reading" else total_went_down(before, body)
        if went is not None:
            self._event(
                "total-decreased-without-correction",
                f"{subject}: the total went from {went[0]} to {went[1]} in entry "
                f"{index} with no correction on record",
                subject,
                index=index,
                subject=subject,
                before=went[0],
                after=went[1],
            )
        if stage == "machine_reading" and body.get("stage") == "officer_confirmed":
            limits = self._limits
            gaps = reading_differences(
                before,
                body,
                limits.reading_difference_votes,
                limits.reading_difference_ratio,
            )
            if gaps:
                first = gaps[0]
                self._event(
                    "reading-differs",
                    f"{subject}: the officers confirmed {first.confirmed} for "
                    f"{first.candidate} where the machine read {first.machine} "
                    f"({len(gaps)} difference(s), entry {index})",
                    subject,
                    index=index,
                    subject=subject,
                    differences=[[g.candidate, g.machine, g.confirmed] for g in gaps],
                )

    def _correction(
        self,
        examined: Examined,
        record: Record,
        region: str,
        logged: dt.datetime | None,
    ) -> None:
        parent = parent_recap(record.subject)
        if parent is not None and record.prev is not None:
            row = self._db.execute(
                "SELECT idx, children FROM recaps WHERE subject = ?", (parent,)
            ).fetchone()
            if row is not None and [record.subject, record.prev] in json.loads(row[1]):
                self._event(
                    "changed-under-signed-recap",
                    f"{record.subject} changed in entry {examined.index} after "
                    f"{parent} (entry {row[0]}) was signed over its earlier revision",
                    record.subject,
                    index=examined.index,
                    subject=record.subject,
                    recap=parent,
                    recap_index=row[0],
                )
        if logged is None:
            return
        now = logged.timestamp()
        province = region[:2] or "national"
        keyid = examined.signers[0] if examined.signers else ""
        self._recent.append((now, province, keyid))
        self._db.execute(
            "INSERT OR REPLACE INTO monitor_corrections VALUES (?, ?, ?, ?)",
            (examined.index, now, province, keyid),
        )
        window = self._limits.corrections_window_seconds
        while self._recent and self._recent[0][0] < now - window:
            self._recent.popleft()
        self._db.execute(
            "DELETE FROM monitor_corrections WHERE logged < ?", (now - window,)
        )
        total = len(self._recent)
        if total < self._limits.corrections_min:
            return
        share = self._limits.corrections_share
        for position, name, what in (
            (1, "corrections-concentrated", "province"),
            (2, "corrections-by-one-key", "key"),
        ):
            top, count = Counter(item[position] for item in self._recent).most_common(
                1
            )[0]
            if top and count / total >= share:
                self._event(
                    name,
                    f"{count} of the last {total} corrections ({count / total:.0%}) "
                    f"are in {what} {top}",
                    f"{what} {top}",
                    **{what: top},
                    corrections=count,
                    window_corrections=total,
                )

    def _regions(self, keyid: str, region: str, index: int) -> None:
        digits = self._limits.key_region_digits
        if len(region) < digits:  # a recap above that level names no one region
            return
        pair = (keyid, region[:digits])
        if pair in self._seen:  # known in this process: nothing new to decide
            return
        self._seen.add(pair)
        added = self._db.execute(
            "INSERT OR IGNORE INTO monitor_key_regions VALUES (?, ?)",
            (keyid, region[:digits]),
        ).rowcount
        if not added:
            return  # a region this key wrote in before: nothing new to decide
        count = self._regions_of.get(keyid)
        if count is None:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM monitor_key_regions WHERE keyid = ?", (keyid,)
            ).fetchone()
        else:
            count += 1
        self._regions_of[keyid] = count
        if count > self._limits.key_max_regions:
            self._event(
                "key-in-many-regions",
                f"key {keyid} has written in {count} regions (more than "
                f"{self._limits.key_max_regions})",
                f"key {keyid}",
                keyid=keyid,
                regions=count,
                index=index,
            )

    def _event(self, name: str, summary: str, key: str, /, **details: object) -> None:
        self._book.event(Alert(name, summary, key, dict(details)))


def _later(examined: Examined) -> dict[str, Any]:
    """A later revision as the comparisons read it: figures, stage, correction.

    A form a worker process decided comes back with its stage alone (the
    audit's figures of it are in ``examined.totals``); its correction, if any,
    is read from its payload again.
    """
    record = examined.record
    if record is None:
        return {}
    body: dict[str, Any] = dict(record.body)
    out: dict[str, Any] = (
        json.loads(examined.totals) if examined.totals else dict(_kept(body))
    )
    out["stage"] = body.get("stage")
    if examined.state_version >= 0 and set(body) <= {"stage"}:
        body = dict(parse_record(record.payload).body)  # only the stage came back
    if "correction" in body:
        out["correction"] = body["correction"]
    return out


def _kept(body: dict[str, object]) -> dict[str, object]:
    """What the checks compare a later revision with: the figures, no more."""
    source = body.get("totals", body)
    if not isinstance(source, dict):
        return {}
    return {k: source[k] for k in ("votes", "parties", "total") if k in source}

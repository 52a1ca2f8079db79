"""Where an audit keeps what the log before an entry decides: SQLite.

The auditor's state (subjects' heads, payload hashes, totals, recaps, findings,
and the records that change what later records are checked against) lives in
an ``AuditStore``: SQLite from the standard library, in memory or in a file. So
memory stays bounded at any log size, and a daily audit continues where the last
one stopped: the store commits in steps, all or nothing, and a resumed auditor
replays the kept records (``replayable``) to rebuild its key registry and
election state.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from verifier.record import Record, parse_record

__all__ = ["AuditStore", "replayable", "unreplayable"]

_FORMAT = "4"  # of the store's tables; a state of another format needs --fresh
_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS heads (
    subject TEXT PRIMARY KEY, revision INTEGER, payload BLOB, idx INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payloads (hash BLOB PRIMARY KEY, idx INTEGER)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (idx INTEGER PRIMARY KEY, subject TEXT, totals TEXT);
CREATE TABLE IF NOT EXISTS recaps (subject TEXT PRIMARY KEY, idx INTEGER, children TEXT)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    seq INTEGER PRIMARY KEY, name TEXT, idx INTEGER, subject TEXT, detail TEXT,
    rule TEXT
);
CREATE TABLE IF NOT EXISTS replay (idx INTEGER PRIMARY KEY, entry BLOB);
CREATE TABLE IF NOT EXISTS stations (
    subject TEXT PRIMARY KEY, idx INTEGER, stage TEXT, total INTEGER,
    entitled INTEGER, voted INTEGER, valid INTEGER, leader INTEGER,
    counts INTEGER, digits TEXT, extremes TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS corrections (
    idx INTEGER PRIMARY KEY, subject TEXT, reason TEXT
);
CREATE TABLE IF NOT EXISTS hours (
    hour TEXT, province TEXT, kind TEXT, n INTEGER, PRIMARY KEY (hour, province, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decreases (
    idx INTEGER PRIMARY KEY, subject TEXT, before INTEGER, after INTEGER
);
"""


class AuditStore:
    """The audit's state: SQLite in memory (``None``) or in a file (resumable).

    Totals are kept by entry index, so that storing them appends to the table;
    a recap's child is found by its payload hash, then its index.

    Raises:
        sqlite3.DatabaseError: the file is not an audit state of this version.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.db = sqlite3.connect(":memory:" if path is None else str(path))
        self.db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            "PRAGMA journal_size_limit=67108864;"  # the WAL shrinks after each step
            "PRAGMA cache_size=-131072; PRAGMA temp_store=MEMORY;"
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
        )
        row = self.db.execute("SELECT v FROM meta WHERE k = 'format'").fetchone()
        found = None if row is None else row[0]
        if found not in (None, _FORMAT) or (found is None and self.progress()):
            self.db.close()
            raise sqlite3.DatabaseError(f"not an audit state of format {_FORMAT}")
        self.db.executescript(_SCHEMA_SQL)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
        self.db.commit()
        self.db.execute("BEGIN")

    def progress(self) -> dict[str, Any] | None:
        """What ``save`` stored last (None for a new audit)."""
        row = self.db.execute("SELECT v FROM meta WHERE k = 'progress'").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def set_progress(self, value: dict[str, Any]) -> None:
        """Store the audit's progress (committed with ``commit``)."""
        self.db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('progress', ?)", (json.dumps(value),)
        )

    def figures(self, digest: bytes) -> tuple[int, str, str | None] | None:
        """(index, subject, totals) kept of the tally or recap hashing to ``digest``.

        None if the audit kept none (no such entry, or not a tally or recap).
        """
        row = self.db.execute(
            "SELECT t.idx, t.subject, t.totals FROM payloads p JOIN totals t "
            "ON t.idx = p.idx WHERE p.hash = ?",
            (digest,),
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), row[2])

    def commit(self) -> None:
        """Make everything so far durable (one transaction: all or nothing)."""
        self.db.commit()
        self.db.execute("BEGIN")

    def close(self) -> None:
        """Roll back what was not committed; close."""
        self.db.rollback()
        self.db.close()


def replayable(record: Record, signers: tuple[str, ...], logged_at: str) -> bytes:
    """A state-changing record as the store keeps it, to replay on resuming."""
    return json.dumps(
        {
            "payload": record.payload.decode("utf-8"),
            "signers": list(signers),
            "logged_at": logged_at,
        }
    ).encode("utf-8")


def unreplayable(data: bytes) -> tuple[Record, tuple[str, ...], str]:
    """(record, signers, logged_at) of what ``replayable`` kept."""
    raw = json.loads(data)
    return (
        parse_record(raw["payload"].encode("utf-8")),
        tuple(raw["signers"]),
        raw["logged_at"],
    )

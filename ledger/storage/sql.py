"""SQLAlchemy Core storage for the log, on SQLite (embedded default) and PostgreSQL.

``SqlStorage`` is every storage concern on one engine: connecting and durability
(``engine``), the writer's lock and commits (``writes``), reads of the log
(``logreads``) and of the record index (``recordindex``). These modules are the
only ones that speak SQL. What the rest of the log needs from storage is written
down as protocols in ``ledger.storage.base``.
"""

from __future__ import annotations

from ledger.storage.engine import normalize_url
from ledger.storage.logreads import SqlLogReads
from ledger.storage.recordindex import SqlRecordIndex
from ledger.storage.writes import SqlWrites

__all__ = ["SqlStorage", "normalize_url"]


class SqlStorage(SqlWrites, SqlLogReads, SqlRecordIndex):
    """The log and its record index in one SQL database."""

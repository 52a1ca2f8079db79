"""Table definitions (SQLAlchemy Core). Row layer only: no domain objects here.

Append-only tables: ``log_meta``, ``entries``, ``tiles``, ``checkpoints``. The one
mutable row is ``tree_head``, moved by compare-and-swap on its size. Database
triggers (created by the migration) refuse UPDATE and DELETE on the append-only
tables and any head update that would shrink the tree or go back in time.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)

__all__ = [
    "checkpoints",
    "entries",
    "log_meta",
    "metadata",
    "records",
    "sequencer_lease",
    "tiles",
    "tree_head",
    "witnessed_checkpoint",
    "write_outcomes",
    "write_queue",
]

metadata = MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid alias: the fastest layout for an index key.
_Index = BigInteger().with_variant(Integer(), "sqlite")

log_meta = Table(
    "log_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", Text, nullable=False),
    Column("verifier_key", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="log_meta_single_row"),
)

entries = Table(
    "entries",
    metadata,
    Column("idx", _Index, primary_key=True, autoincrement=False),
    # leaf_key: the first 8 bytes of leaf_hash as a signed integer, indexed for
    # dedupe and lookup. Half the size of an index on the full hash, which
    # matters because leaf hashes arrive in random order: at a million entries
    # every commit dirties index pages all over the tree. A key match is always
    # confirmed on the full leaf_hash; the single writer keeps hashes unique.
    Column("leaf_key", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_entries_leaf_key", "leaf_key"),
)

tiles = Table(
    "tiles",
    metadata,
    Column("level", Integer, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx", name="tiles_pk"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", _Index, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("made_at_ms", BigInteger, nullable=False),
)

tree_head = Table(
    "tree_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("made_at_ms", BigInteger, nullable=False),
    # The writer's seal of the record index at this head (ledger/seal.py).
    Column("seal", LargeBinary, nullable=True),
    CheckConstraint("id = 1", name="tree_head_single_row"),
)

# One row per logged record: the subject chain (unique subject + revision) and
# payload dedupe (payload_key: first 8 bytes of the payload's SHA-256, confirmed on
# the full hash). Derived from the entries; written in the same transaction.
records = Table(
    "records",
    metadata,
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("subject", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("payload_key", BigInteger, nullable=False),
    Column("payload_hash", LargeBinary(32), nullable=False),
    UniqueConstraint("subject", "revision", name="records_subject_revision"),
    Index("ix_records_payload_key", "payload_key"),
    Index("ix_records_schema", "schema_name", "idx"),
)

# Many processes, one sequencer (migration 0004, ledger.storage.lease and
# ledger.cluster): the lease with its fencing token, and the work in progress
# between the API processes and the sequencer. Not part of the log.
sequencer_lease = Table(
    "sequencer_lease",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("token", BigInteger, nullable=False),
    Column("holder", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("id = 1", name="sequencer_lease_single_row"),
)

write_queue = Table(
    "write_queue",
    metadata,
    Column("id", _Index, primary_key=True, autoincrement=True),
    Column("body", LargeBinary, nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
)

write_outcomes = Table(
    "write_outcomes",
    metadata,
    Column("id", _Index, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
    Column("mac", LargeBinary(32), nullable=False),
    Column(
        "decided_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.current_timestamp(),
    ),
)

# The latest checkpoint with its witnesses' cosignatures (migration 0005): the
# process that asks the witnesses (the writer, or the cluster's sequencer)
# stores it, and every other process serves it once it has proven it against
# its own signed tree (``ledger.read.witnessed``). One row, replaced only by a
# note of at least its size. Not part of the log.
witnessed_checkpoint = Table(
    "witnessed_checkpoint",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("note", LargeBinary, nullable=False),
    CheckConstraint("id = 1", name="witnessed_checkpoint_single_row"),
)

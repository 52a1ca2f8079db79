"""Initial log schema: entries, tiles, checkpoints, tree head, append-only triggers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("log_meta", "entries", "tiles", "checkpoints")

_SQLITE = """
CREATE TRIGGER {table}_no_{verb} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, 'saksi: {table} is append-only'); END
"""
_SQLITE_HEAD = """
CREATE TRIGGER tree_head_forward BEFORE UPDATE ON tree_head
WHEN NEW.size < OLD.size OR NEW.made_at_ms <= OLD.made_at_ms OR NEW.id != OLD.id
BEGIN SELECT RAISE(ABORT, 'saksi: tree head may only move forward'); END
"""
_PG_FUNC = """
CREATE FUNCTION saksi_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'saksi: % is append-only', TG_TABLE_NAME; END $$
"""
_PG_HEAD_FUNC = """
CREATE FUNCTION saksi_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size OR NEW.made_at_ms <= OLD.made_at_ms
     OR NEW.id <> OLD.id THEN
    RAISE EXCEPTION 'saksi: tree head may only move forward';
  END IF;
  RETURN NEW;
END $$
"""


def _create_tables() -> None:
    # Frozen copy of the schema as of this revision (ledger/storage/schema.py may
    # move on; this migration must not).
    index = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "log_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("verifier_key", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="log_meta_single_row"),
    )
    op.create_table(
        "entries",
        sa.Column("idx", index, primary_key=True, autoincrement=False),
        sa.Column("leaf_key", sa.BigInteger, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_entries_leaf_key", "entries", ["leaf_key"])
    op.create_table(
        "tiles",
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="tiles_pk"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", index, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("made_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tree_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("made_at_ms", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="tree_head_single_row"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    _create_tables()
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for verb, sql_op in (("update", "UPDATE"), ("delete", "DELETE")):
                op.execute(_SQLITE.format(table=table, verb=verb, op=sql_op))
        op.execute(_SQLITE_HEAD)
        op.execute(
            "CREATE TRIGGER tree_head_no_delete BEFORE DELETE ON tree_head "
            "BEGIN SELECT RAISE(ABORT, 'saksi: tree head cannot be deleted'); END"
        )
    elif bind.dialect.name == "postgresql":
        op.execute(_PG_FUNC)
        op.execute(_PG_HEAD_FUNC)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only "
                f"BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION saksi_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION saksi_append_only()"
            )
        op.execute(
            "CREATE TRIGGER tree_head_forward BEFORE UPDATE OR DELETE ON tree_head "
            "FOR EACH ROW EXECUTE FUNCTION saksi_head_forward()"
        )
        op.execute(
            "CREATE TRIGGER tree_head_no_truncate BEFORE TRUNCATE ON tree_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION saksi_append_only()"
        )
    else:
        raise RuntimeError(f"unsupported database {bind.dialect.name}")


def downgrade() -> None:
    raise RuntimeError("the log is append-only: no downgrades")

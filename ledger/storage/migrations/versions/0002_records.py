"""Record index: one row per logged record (subject chain, payload dedupe).

Revision ID: 0002
Revises: 0001

Derived from the entries (``saksi check`` rebuilds and compares it), written in the
same transaction as the entry it indexes, append-only like the entries.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Frozen copy of the table as of this revision.
    index = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "records",
        sa.Column("idx", index, primary_key=True, autoincrement=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("schema_name", sa.Text, nullable=False),
        sa.Column("payload_key", sa.BigInteger, nullable=False),
        sa.Column("payload_hash", sa.LargeBinary(32), nullable=False),
        sa.UniqueConstraint("subject", "revision", name="records_subject_revision"),
    )
    op.create_index("ix_records_payload_key", "records", ["payload_key"])
    op.create_index("ix_records_schema", "records", ["schema_name", "idx"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb, sql_op in (("update", "UPDATE"), ("delete", "DELETE")):
            op.execute(
                f"CREATE TRIGGER records_no_{verb} BEFORE {sql_op} ON records "
                "BEGIN SELECT RAISE(ABORT, 'saksi: records is append-only'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records "
            "FOR EACH ROW EXECUTE FUNCTION saksi_append_only()"
        )
        op.execute(
            "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records "
            "FOR EACH STATEMENT EXECUTE FUNCTION saksi_append_only()"
        )
    else:
        raise RuntimeError(f"unsupported database {bind.dialect.name}")


def downgrade() -> None:
    raise RuntimeError("the log is append-only: no downgrades")

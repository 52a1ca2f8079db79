"""Many processes, one sequencer: the lease, the write queue and its outcomes.

Revision ID: 0004
Revises: 0003

``sequencer_lease`` is one row: which process integrates now, its fencing token
(raised by one at every takeover) and until when its lease runs, in the
database's own clock. Every commit checks the token inside its transaction, so a
sequencer that lost the lease can commit nothing (``ledger.storage.lease``).
``write_queue`` holds checked submissions from every API process until the
sequencer decides them; ``write_outcomes`` holds each decision until the process
that queued the submission takes it (``ledger.cluster``). Neither is part of the
log: both are work in progress, deleted as it is done, and every row carries a
MAC under a key derived from the log key, so an inserted or edited row is
refused.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sequencer_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="sequencer_lease_single_row"),
    )
    op.execute(
        "INSERT INTO sequencer_lease (id, token, holder, expires_at) "
        "VALUES (1, 0, '', '1970-01-01 00:00:00+00')"
    )
    queue_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "write_queue",
        sa.Column("id", queue_id, primary_key=True, autoincrement=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "write_outcomes",
        sa.Column("id", queue_id, primary_key=True, autoincrement=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("mac", sa.LargeBinary(32), nullable=False),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
    )


def downgrade() -> None:
    raise RuntimeError("the log is append-only: no downgrades")

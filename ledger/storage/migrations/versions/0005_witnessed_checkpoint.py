"""The witnessed checkpoint, shared by every process that serves the log.

Revision ID: 0005
Revises: 0004

``witnessed_checkpoint`` is one row: the latest checkpoint with the cosignatures
its witnesses returned, stored by the process that asked them (the writer, or
the cluster's sequencer). Every other process (cluster members, read-only
servers on a replica) serves it only after proving it against its own signed
tree: the log's signature, its origin, and its root consistent with the tree.
Not part of the log; replaced only by a note of at least its size.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witnessed_checkpoint",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("id = 1", name="witnessed_checkpoint_single_row"),
    )


def downgrade() -> None:
    raise RuntimeError("the log is append-only: no downgrades")

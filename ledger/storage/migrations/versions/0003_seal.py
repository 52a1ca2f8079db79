"""The writer's seal: one column on the tree head (see ledger/seal.py).

Revision ID: 0003
Revises: 0002

A log written before this revision has no seal; its writer's next start runs
the full check once and then seals the head.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tree_head", sa.Column("seal", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    raise RuntimeError("the log is append-only: no downgrades")

"""Decision time and author on cases (digest figures), the digests-sent table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("sent_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "day", name=op.f("pk_digests")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_action_at", ["action", "at"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("decided_at", storage.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("decided_by", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_index("ix_cases_deadline_at", ["deadline_at"], unique=False)
        batch_op.create_index("ix_cases_decided_at", ["decided_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_decided_at")
        batch_op.drop_index("ix_cases_deadline_at")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("decided_at")

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_action_at")

    op.drop_table("digests")

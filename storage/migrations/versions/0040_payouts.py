"""payouts: the money side of payout cases

Revision ID: 0040_payouts
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0040_payouts"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payout_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payee_name", sa.String(length=128), nullable=False),
        sa.Column("payee_account", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("approved_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.String(length=64), nullable=False),
        sa.Column("paid_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejected_by", sa.String(length=64), nullable=False),
        sa.Column("rejected_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("provider_status", sa.String(length=64), nullable=False),
        sa.Column("out_biz_no", sa.String(length=64), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("batch_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name=op.f("fk_payouts_case_pk_cases")),
        sa.ForeignKeyConstraint(["batch_pk"], ["cases.id"], name=op.f("fk_payouts_batch_pk_cases")),
        sa.PrimaryKeyConstraint("case_pk", name=op.f("pk_payouts")),
        sa.UniqueConstraint("payout_id", name=op.f("uq_payouts_payout_id")),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index("ix_payouts_approved_at", ["approved_at"], unique=False)
        batch_op.create_index("ix_payouts_batch_pk", ["batch_pk"], unique=False)
        batch_op.create_index("ix_payouts_paid_at", ["paid_at"], unique=False)
        batch_op.create_index("ix_payouts_requested_at", ["requested_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_payouts_requested_at")
        batch_op.drop_index("ix_payouts_paid_at")
        batch_op.drop_index("ix_payouts_batch_pk")
        batch_op.drop_index("ix_payouts_approved_at")
    op.drop_table("payouts")

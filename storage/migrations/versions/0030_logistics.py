"""parcels: one row per carrier + tracking number, watched for logistics anomalies

Revision ID: 0030_logistics
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0030_logistics"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parcels",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("tracking_no", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("shop", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("shipped_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("picked_up_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("anomalies", sa.JSON(), nullable=False),
        sa.Column("scans", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcels")),
        sa.UniqueConstraint("carrier", "tracking_no", name="uq_parcels_carrier_tracking_no"),
    )
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.create_index("ix_parcels_next_check_at", ["next_check_at"], unique=False)
        batch_op.create_index("ix_parcels_order_id", ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.drop_index("ix_parcels_order_id")
        batch_op.drop_index("ix_parcels_next_check_at")
    op.drop_table("parcels")

"""events.waits_for: the refund an event waits for, so its arrival re-arms the event

Revision ID: 0050_ingest
Revises: 0050_cards
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050_ingest"
down_revision: str | Sequence[str] | None = "0050_cards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("waits_for", sa.String(length=128), nullable=False, server_default="")
        )
        batch.create_index("ix_events_waits_for", ["waits_for"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_waits_for")
        batch.drop_column("waits_for")

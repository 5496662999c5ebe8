"""Sandbox messages remember how a platform would have carried them (an answer, a tap's answer,
the bot's own line, a line only WeCom gets) and, for a card, what a WeCom group still shows.

Revision ID: 0080_sandbox_meta
Revises: 0070_case_keys
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0080_sandbox_meta"
down_revision: str | Sequence[str] | None = "0070_case_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sandbox_messages") as batch:
        batch.add_column(sa.Column("meta", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sandbox_messages") as batch:
        batch.drop_column("meta")

"""Folds remember each case's version as the batch card shows it, so that approving from a
batch card drawn before a case's amount changed is refused for that case.

Revision ID: 0050_cards
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050_cards"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("folds") as batch:
        batch.add_column(sa.Column("versions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("folds") as batch:
        batch.drop_column("versions")

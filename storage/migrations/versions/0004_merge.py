"""Join the branches: decisions/digests/folds, logistics, payouts.

Revision ID: 0004
Revises: 0003, 0030_logistics, 0040_payouts
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = ("0003", "0030_logistics", "0040_payouts")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""case_keys: what people know a case by (tracking numbers, the buyer's nick), for 查; parcels
found by tracking number alone

Revision ID: 0070_case_keys
Revises: 0060_connectors
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0070_case_keys"
down_revision: str | Sequence[str] | None = "0060_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "case_keys",
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name=op.f("fk_case_keys_case_pk_cases")),
        sa.PrimaryKeyConstraint("case_pk", "kind", "value", name=op.f("pk_case_keys")),
    )
    op.create_index("ix_case_keys_kind_value", "case_keys", ["kind", "value"], unique=False)
    op.create_index("ix_parcels_tracking_no", "parcels", ["tracking_no"], unique=False)
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_parcels_tracking_no", table_name="parcels")
    op.drop_index("ix_case_keys_kind_value", table_name="case_keys")
    op.drop_table("case_keys")


def _backfill() -> None:
    """Keys for the cases already stored, read as handlers.lookup.search_keys read them when
    this revision was written (a migration keeps its own copy: the code may change later)."""
    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("data", sa.JSON))
    keys = sa.table(
        "case_keys",
        sa.column("case_pk", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("value", sa.String),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(cases.c.id, cases.c.data)
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(BACKFILL_CHUNK)
        ).all()
        if not rows:
            return
        found = [
            {"case_pk": pk, "kind": kind, "value": value}
            for pk, data in rows
            for kind, value in sorted(_keys(data if isinstance(data, Mapping) else {}))
        ]
        if found:
            conn.execute(keys.insert(), found)
        last = rows[-1][0]


def _normalize(kind: str, text: str) -> str:
    words = unicodedata.normalize("NFKC", text).split()
    plain = "".join(words).upper() if kind == "tracking" else " ".join(words).lower()
    return plain[:128]


def _keys(data: Mapping[str, Any]) -> set[tuple[str, str]]:
    def obj(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    refund = obj(data.get("refund"))
    tracking = [
        data.get("tracking_no"),
        obj(refund.get("shipping")).get("tracking_no"),
        obj(refund.get("return_tracking")).get("tracking_no"),
    ]
    found = {("tracking", _normalize("tracking", t)) for t in tracking if isinstance(t, str)}
    nick = obj(refund.get("buyer")).get("nick")
    if isinstance(nick, str):
        found.add(("nick", _normalize("nick", nick)))
    return {(kind, value) for kind, value in found if value}

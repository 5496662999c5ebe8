"""Initial schema: events, cases, audit log, outbox, timers, card placements, sandbox chat.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.base

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.String(length=128), nullable=False),
        sa.Column("handle", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shop", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("deadline_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_actor", sa.String(length=64), nullable=False),
        sa.Column("last_action", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("handle", name=op.f("uq_cases_handle")),
        sa.UniqueConstraint("kind", "case_id", name="uq_cases_kind_case_id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_closed_at", ["closed_at"], unique=False)
        batch_op.create_index("ix_cases_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_cases_group_state", ["group_id", "state"], unique=False)
        batch_op.create_index("ix_cases_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_cases_state", ["state"], unique=False)

    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("shop", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("processed_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_state_seq", ["state", "seq"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name=op.f("fk_audit_log_case_pk_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_case_pk_id", ["case_pk", "id"], unique=False)

    op.create_table(
        "card_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"], ["cases.id"], name=op.f("fk_card_messages_case_pk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_messages")),
        sa.UniqueConstraint("case_pk", "group_id", name="uq_card_messages_case_group"),
    )
    with op.batch_alter_table("card_messages", schema=None) as batch_op:
        batch_op.create_index("ix_card_messages_ref", ["channel", "ref"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name=op.f("fk_outbox_case_pk_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_case_pk", ["case_pk"], unique=False)
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "sandbox_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"], ["cases.id"], name=op.f("fk_sandbox_messages_case_pk_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_messages")),
    )
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_sandbox_messages_group_id", ["group_id", "id"], unique=False)

    op.create_table(
        "timers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("due_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("lease_until", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name=op.f("fk_timers_case_pk_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.create_index("ix_timers_case_pk", ["case_pk"], unique=False)
        batch_op.create_index("ix_timers_state_due", ["state", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index("ix_timers_state_due")
        batch_op.drop_index("ix_timers_case_pk")

    op.drop_table("timers")
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_messages_group_id")

    op.drop_table("sandbox_messages")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")
        batch_op.drop_index("ix_outbox_case_pk")

    op.drop_table("outbox")
    with op.batch_alter_table("card_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_card_messages_ref")

    op.drop_table("card_messages")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_case_pk_id")

    op.drop_table("audit_log")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_state_seq")

    op.drop_table("events")
    op.drop_table("counters")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_state")
        batch_op.drop_index("ix_cases_order_id")
        batch_op.drop_index("ix_cases_group_state")
        batch_op.drop_index("ix_cases_created_at")
        batch_op.drop_index("ix_cases_closed_at")

    op.drop_table("cases")

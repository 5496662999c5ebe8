"""Tables. Money is integer fen; every timestamp is timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, BigId, UTCDateTime

Json = dict[str, Any]


class Event(Base):
    """Every accepted inbound event, verbatim; also the queue the event processor drains."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    shop: Mapped[str] = mapped_column(String(128), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[Json] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    # The refund this event waits for (it arrived first); its arrival re-arms the event.
    waits_for: Mapped[str] = mapped_column(String(128), default="")

    __table_args__ = (
        Index("ix_events_state_seq", "state", "seq"),
        Index("ix_events_waits_for", "waits_for"),
    )


class Case(Base):
    """A refund, intercept, payout or anomaly: one card, one state machine."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[str] = mapped_column(String(128))
    handle: Mapped[str] = mapped_column(String(16), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    shop: Mapped[str] = mapped_column(String(128), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    order_id: Mapped[str] = mapped_column(String(128), default="")
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    group_id: Mapped[str] = mapped_column(String(64), default="")
    assignee: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(255), default="")
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_actor: Mapped[str] = mapped_column(String(64), default="")
    last_action: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        UniqueConstraint("kind", "case_id", name="uq_cases_kind_case_id"),
        Index("ix_cases_deadline_at", "deadline_at"),
        Index("ix_cases_decided_at", "decided_at"),
        Index("ix_cases_state", "state"),
        Index("ix_cases_group_state", "group_id", "state"),
        Index("ix_cases_created_at", "created_at"),
        Index("ix_cases_closed_at", "closed_at"),
        Index("ix_cases_order_id", "order_id"),
    )


class CaseKey(Base):
    """What people know a case by besides its handle and ids — a tracking number, the buyer's
    nick — normalised, one row each; kept by the case repository whenever `data` is written."""

    __tablename__ = "case_keys"

    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)

    __table_args__ = (Index("ix_case_keys_kind_value", "kind", "value"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str] = mapped_column(String(32), default="")
    to_state: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[Json] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_log_case_pk_id", "case_pk", "id"),
        Index("ix_audit_log_action_at", "action", "at"),
    )


class OutboxItem(Base):
    """A side effect written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    group_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[Json] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_case_pk", "case_pk"),
    )


class Timer(Base):
    """A durable timer: fires once, survives restarts, cancelled when its reason goes away."""

    __tablename__ = "timers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    payload: Mapped[Json] = mapped_column(JSON, default=dict)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_timers_state_due", "state", "due_at"),
        Index("ix_timers_case_pk", "case_pk"),
    )


class CardMessage(Base):
    """Where a case's card lives on a platform, so updates edit it in place."""

    __tablename__ = "card_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    group_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(255), default="")
    extra: Mapped[Json] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("case_pk", "group_id", name="uq_card_messages_case_group"),
        Index("ix_card_messages_ref", "channel", "ref"),
    )


class SandboxMessage(Base):
    """The sandbox channel keeps its group chat here, as a platform would."""

    __tablename__ = "sandbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    author: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    case_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    card: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    # How a platform would have carried it (`via`) and, for a card, what WeCom still shows.
    meta: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_sandbox_messages_group_id", "group_id", "id"),)


class Counter(Base):
    """Per-kind sequence behind the short handles (R12, P7, X3)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Digest(Base):
    """One row per group and local day whose digest was sent: the once-a-day guarantee."""

    __tablename__ = "digests"

    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Payout(Base):
    """The money side of a payout case, for reconciliation and the provider.

    The full payee account lives only here; cards, logs, the case API and exports mask it.
    `out_biz_no` and `sends` let the transfer ask before it ever sends a second time.
    """

    __tablename__ = "payouts"

    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    payout_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    payee_name: Mapped[str] = mapped_column(String(128), default="")
    payee_account: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str] = mapped_column(String(16), default="")
    requested_by: Mapped[str] = mapped_column(String(64), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str] = mapped_column(String(64), default="")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paid_by: Mapped[str] = mapped_column(String(64), default="")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rejected_by: Mapped[str] = mapped_column(String(64), default="")
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reference: Mapped[str] = mapped_column(String(128), default="")
    provider_status: Mapped[str] = mapped_column(String(64), default="")
    out_biz_no: Mapped[str] = mapped_column(String(64), default="")
    sends: Mapped[int] = mapped_column(Integer, default=0)
    batch_pk: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_payouts_requested_at", "requested_at"),
        Index("ix_payouts_approved_at", "approved_at"),
        Index("ix_payouts_paid_at", "paid_at"),
        Index("ix_payouts_batch_pk", "batch_pk"),
    )


class Fold(Base):
    """Cards folded into one batch card when a group's sending budget ran short (F3)."""

    __tablename__ = "folds"

    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64))
    case_pks: Mapped[list[int]] = mapped_column(JSON)
    # Each case's version as the batch card shows it ({"<case pk>": version}); None on older folds.
    versions: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Parcel(Base):
    """One parcel per carrier + tracking number: its newest scan and what the watch knows.

    `next_check_at` is the earliest moment a threshold could be crossed without a new
    scan (None when nothing is left to watch); the anomaly scan looks only at parcels
    whose moment has come. `flags` remembers, per anomaly kind, the last scan time it
    was raised for, so one stall is raised once; `anomalies` maps kind → anomaly case id.
    """

    __tablename__ = "parcels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_no: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(128), default="")
    shop: Mapped[str] = mapped_column(String(128), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="event")
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    picked_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flags: Mapped[Json] = mapped_column(JSON, default=dict)
    anomalies: Mapped[Json] = mapped_column(JSON, default=dict)
    scans: Mapped[list[Json]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("carrier", "tracking_no", name="uq_parcels_carrier_tracking_no"),
        Index("ix_parcels_next_check_at", "next_check_at"),
        Index("ix_parcels_order_id", "order_id"),
        Index("ix_parcels_tracking_no", "tracking_no"),
    )


class Lease(Base):
    """A named lease: which instance holds it (the one WeCom AI-bot connection) and until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectorState(Base):
    """What a shop connector keeps between runs: its incremental-pull cursor, its tokens."""

    __tablename__ = "connector_state"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[Json] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

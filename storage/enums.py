"""Persisted enumerations: their values are stored as strings and appear in the API."""

from __future__ import annotations

from enum import StrEnum


class CaseKind(StrEnum):
    REFUND = "refund"
    INTERCEPT = "intercept"
    PAYOUT = "payout"
    ANOMALY = "anomaly"
    PAYOUT_BATCH = "payout_batch"

    @property
    def handle_prefix(self) -> str:
        return _PREFIX[self]


_PREFIX = {
    CaseKind.REFUND: "R",
    CaseKind.INTERCEPT: "X",
    CaseKind.PAYOUT: "P",
    CaseKind.ANOMALY: "A",
    CaseKind.PAYOUT_BATCH: "B",
}


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


class OutboxState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class MessageKind(StrEnum):
    CARD = "card"
    TEXT = "text"

"""The typed shape of `case.data` for payouts (`PayoutData`) and payout batches (`BatchData`)."""

from __future__ import annotations

from pydantic import Field

from handlers.case_data import CaseData, Stored
from handlers.payout.machine import PayoutState


class Stamp(Stored):
    """Who did something, and when (ISO 8601)."""

    by: str
    at: str


# -- a payout -------------------------------------------------------------------------------


class PayoutInfo(Stored):
    """What was asked for; the payee only masked (the full account lives in the payout row)."""

    kind: str | None = None
    payee_name: str = ""
    payee: str = ""
    requested_by: str = ""
    requested_at: str = ""


class Rejection(Stored):
    by: str
    at: str
    reason: str


class Transfer(Stored):
    """The Alipay transfer of the current attempt, and what Alipay (or the dispatcher) said."""

    attempt: int = 0
    out_biz_no: str = ""
    status: str = ""
    detail: str = ""
    unknown: bool = False
    checks: int = 0
    # WeChat Pay 商家转账: accepted and waiting for the buyer to confirm receipt, and what the
    # buyer's confirm page needs (`package_info`, only in the create answer).
    waiting: bool = False
    confirm: str = ""


class BatchLink(Stored):
    """The batch a payout waits in."""

    pk: int
    handle: str


class PayoutData(CaseData):
    payout: PayoutInfo = Field(default_factory=PayoutInfo)
    approval: Stamp | None = None
    confirm: Stamp | None = None
    reject: Rejection | None = None
    reference: str | None = None
    # How the money moved: `manual` or `alipay` (absent: the configured provider).
    channel: str | None = None
    transfer: Transfer = Field(default_factory=Transfer)
    error: str | None = None
    batch: BatchLink | None = None
    buyer_notified: str | None = None
    buyer_notify_error: str | None = None
    buyer_notify_manual: str | None = None


# -- a batch --------------------------------------------------------------------------------


class BatchItem(Stored):
    """One payout of a batch as its card shows it."""

    pk: int
    handle: str
    amount_fen: int
    payee: str = ""
    state: PayoutState
    note: str = ""
    # Why the confirmation passed this payout by ("" once confirmed; absent before).
    skipped: str | None = None


class BatchConfirm(Stored):
    by: str
    at: str
    ref: str


class BatchData(CaseData):
    created_by: str = ""
    items: list[BatchItem] = Field(default_factory=list)
    confirm: BatchConfirm | None = None
    cancel_reason: str | None = None

"""The typed shape of a refund's `case.data`: the platform's request, the decision and approval,
the shop system's answers, the parcel's fate, notes and the buyer conversation.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from handlers.case_data import CaseData, InterceptShown, Nullable, Stored
from handlers.condition import RefundFacts
from handlers.refund.machine import RefundState
from handlers.schema import RefundRequested
from storage.models import Case


class Shipping(Stored):
    status: str = ""
    carrier: str = ""
    tracking_no: str = ""


class Buyer(Stored):
    nick: str = ""


class PlatformReason(Stored):
    """One of the platform's reasons for refusing a refund (its pick list)."""

    code: str
    text: str


class Request(Stored):
    """The platform's request as received, updates merged in (`refund`); unknown fields kept,
    but not the platform's raw message (the stored event keeps that)."""

    kind: str = ""
    shipping: Shipping = Field(default_factory=Shipping)
    buyer: Buyer = Field(default_factory=Buyer)
    reject_reasons: list[PlatformReason] = Field(default_factory=list)
    back_office_url: str = ""
    # Free-form on the wire (an unknown field of a request, or any object in an update).
    return_tracking: Any = None
    item: Any = None


class Decision(Stored):
    """The last decision: a person's or a rule's approve, reject, escalate or retry."""

    by: str
    action: str
    at: str


class Approved(Stored):
    """The approval that stands: what the shop system is sent, under which outbox key."""

    amount_fen: int | None = None
    by: str = ""
    at: str = ""
    key: str = ""


class Commerce(Stored):
    """What the shop system was asked and answered; `attempt` numbers the approval's calls."""

    attempt: int = 1
    status: str = ""
    error: str = ""
    sent: str = ""
    reject: str = ""
    # What the platform said when it could not do it itself (a manual line), and when it
    # wants an SMS code before it agrees (`verify`).
    detail: str = ""
    verify: str = ""


class Escalation(Stored):
    """Who sent the refund up to a supervisor, with their limit; `intercept` when a person
    recorded that intercept and the refund is above their limit."""

    by: str
    limit: str
    at: str
    intercept: str = ""


class Qc(Stored):
    result: str
    detail: str = ""
    at: str = ""


class AmountRefused(Stored):
    """A platform amount change that was not taken, and why."""

    amount_fen: Nullable[int] = None
    order_amount_fen: Nullable[int] = None
    why: str = ""
    at: str = ""


class AmountChange(Stored):
    """The amounts before and after a platform change, and what it meant for the case."""

    from_fen: int = Field(alias="from")
    to: int
    order_from: Nullable[int]
    order_to: Nullable[int]
    approved: Nullable[int]
    outcome: str
    at: str = ""


class LastBuyerMessage(Stored):
    n: int
    text: str
    at: str


class ReplyRecord(Stored):
    """One reply to the buyer and what became of it."""

    n: int
    by: str
    at: str
    text: str
    template: str = ""
    key: str = ""
    status: str = ""
    detail: str = ""


class Awaiting(Stored):
    """The buyer message (`n`) that waits for an answer, since when; `overdue` is when it had
    waited `[timers] first_response_min` unanswered."""

    n: int
    since: str
    overdue: str = ""


class Complaint(Stored):
    """The buyer's message `n` named a complaint (投诉, 12315 …): `word`, at `at`."""

    n: int
    word: str
    at: str


# `RefundData.stop_wait`: the refund waits for 截单; the stop did not succeed, a person decides.
WAITING_FOR_STOP = "waiting"
STOP_UNCONFIRMED = "person"


class RefundData(CaseData):
    refund: Request = Field(default_factory=Request)
    order_amount_fen: Nullable[int] = None
    rule: str = ""
    review_role: str = ""
    decision: Decision | None = None
    approved: Approved | None = None
    commerce: Commerce = Field(default_factory=Commerce)
    escalation: Escalation | None = None
    reject_reason: str = ""
    reject_code: str = ""
    end_detail: str = ""
    # 截单 at the warehouse: requested, pending, manual, done or "failed: <why>".
    stop_shipment: str = ""
    stop_attempt: int = 0
    # An automatic refund above [rules] refund_before_stop_max: "waiting" for 截单 before it
    # is sent; "person" when the stop did not succeed and a person decides (refund.hold).
    stop_wait: str = ""
    intercept: InterceptShown | None = None
    qc: Qc | None = None
    amount_refused: AmountRefused | None = None
    amount_change: AmountChange | None = None
    buyer_message: LastBuyerMessage | None = None
    replies: list[ReplyRecord] = Field(default_factory=list)
    awaiting_reply: Awaiting | None = None
    complaint: Complaint | None = None

    @property
    def kind(self) -> str:
        return self.refund.kind or "refund_only"

    @property
    def approved_fen(self) -> int | None:
        """The amount of the approval that stands (kept apart from the requested amount)."""
        return self.approved.amount_fen if self.approved is not None else None

    @property
    def sending(self) -> bool:
        """The ERP call for the standing approval has begun (it may have moved money)."""
        sent = self.commerce.sent
        return self.approved is not None and bool(sent) and sent == self.approved.key


def approved_fen(case: Case) -> int | None:
    """The amount of the approval that stands (kept apart from the requested amount)."""
    return RefundData.of(case).approved_fen


def standing_fen(case: Case) -> int:
    """What the refund pays: the approved amount once there is one, else the requested."""
    amount = approved_fen(case)
    return case.amount_fen if amount is None else amount


def approval_role(case: Case) -> str:
    """The role a person needs to let this refund's money move: a supervisor once escalated."""
    if case.state == RefundState.ESCALATED:
        return "supervisor"
    return RefundData.of(case).review_role or "agent"


def facts_of_request(shop: str, platform: str, request: RefundRequested) -> RefundFacts:
    """What the rules see of a refund request before its case exists (as `facts_of` will)."""
    return RefundFacts(
        platform=platform,
        shop=shop,
        kind=request.kind or "refund_only",
        shipping=request.shipping.status or "unshipped",
        amount_fen=request.amount,
        order_amount_fen=request.order_amount,
        reason=request.reason[:255],
    )


def facts_of(case: Case) -> RefundFacts:
    data = RefundData.of(case)
    return RefundFacts(
        platform=case.platform,
        shop=case.shop,
        kind=data.kind,
        shipping=data.refund.shipping.status or "unshipped",
        amount_fen=case.amount_fen,
        order_amount_fen=data.order_amount_fen,
        reason=case.reason,
    )

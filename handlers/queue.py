"""The work queue (待办): every case that waits for a person — refunds to decide or refund by
hand, logistics anomalies, payouts to approve or to pay, intercepts waiting on the carrier,
buyers waiting for an answer — each with when it is due and whose it is, nearest due first.

A refund whose buyer waits for an answer is one item that also counts as a buyer's; it is
due when the first of its platform deadline and the reply's `[timers] first_response_min` is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from handlers.authority import DECIDERS
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.intercept import machine as intercept_machine
from handlers.logistics.data import AnomalyData
from handlers.logistics.machine import ACTIVE, ANOMALY_STATE_TEXT
from handlers.logistics.machine import KIND_TEXT as ANOMALY_KIND_TEXT
from handlers.message import one_line
from handlers.money import format_fen
from handlers.payout import machine as payout_machine
from handlers.payout.data import PayoutData
from handlers.refund import machine as refund_machine
from handlers.refund.data import RefundData
from storage.enums import CaseKind
from storage.models import Case

# More than this many of one kind in the listed groups is past what a chat list can show:
# the list then holds the most urgent of them and says it is not complete.
PER_KIND = 200


class Kind(StrEnum):
    REFUND = "refund"
    ANOMALY = "anomaly"
    PAYOUT = "payout"
    INTERCEPT = "intercept"
    BUYER = "buyer"


KIND_TEXT = {
    Kind.REFUND: "退款",
    Kind.ANOMALY: "异常",
    Kind.PAYOUT: "打款",
    Kind.INTERCEPT: "拦截",
    Kind.BUYER: "买家",
}
# The words a filter may use for each kind (lower case).
KIND_WORDS: dict[str, Kind] = {
    **dict.fromkeys(("退款", "refund", "refunds"), Kind.REFUND),
    **dict.fromkeys(("异常", "物流", "物流异常", "anomaly", "anomalies"), Kind.ANOMALY),
    **dict.fromkeys(("打款", "付款", "payout", "payouts"), Kind.PAYOUT),
    **dict.fromkeys(("拦截", "intercept", "intercepts"), Kind.INTERCEPT),
    **dict.fromkeys(("买家", "留言", "回复", "buyer", "buyers"), Kind.BUYER),
}
OVERDUE_WORDS = frozenset({"超时", "逾期", "过期", "overdue", "late"})

REFUND_WORK = refund_machine.NEEDS_PERSON | {refund_machine.S.MANUAL}
PAYOUT_WORK = (
    payout_machine.S.REQUESTED.value,
    payout_machine.S.APPROVED.value,
    payout_machine.S.FAILED.value,
)


@dataclass(frozen=True)
class Item:
    """One case in the queue: what it waits for (`kinds`), when it is due, how it stands."""

    case: Case
    kinds: frozenset[Kind]
    due: datetime | None
    status: str
    # Who may decide it: a refund's approval role; a payout's requester (not them).
    role: str = "agent"
    requester: str = ""

    @property
    def kind(self) -> Kind:
        """The kind it is listed as: its case's, a refund waiting only on its buyer as a buyer's."""
        return next(k for k in Kind if k in self.kinds)

    def overdue(self, now: datetime) -> bool:
        return self.due is not None and self.due <= now


@dataclass(frozen=True)
class Filter:
    """What a list keeps: items of any of `kinds` (all when empty), only overdue ones."""

    kinds: frozenset[Kind] = frozenset()
    overdue: bool = False

    def admits(self, item: Item, now: datetime) -> bool:
        if self.kinds and not self.kinds & item.kinds:
            return False
        return not self.overdue or item.overdue(now)

    def describe(self) -> str:
        words = [KIND_TEXT[k] for k in Kind if k in self.kinds]
        if self.overdue:
            words.append("超时")
        return " · ".join(words)


@dataclass(frozen=True)
class Queue:
    """The waiting items, nearest due first; `complete` is False when one kind had more than
    `PER_KIND` (the list then holds the most urgent of them)."""

    items: list[Item]
    complete: bool


async def waiting(tx: Tx, *, groups: Collection[str] | None) -> Queue:
    """Every case of `groups` (None: all) that waits for a person, nearest due first."""
    complete = True

    async def read(states: Iterable[str], kind: CaseKind, holding: str = "") -> list[Case]:
        nonlocal complete
        found = await tx.cases.open_cases(
            states=sorted(states), kinds=[kind], groups=groups, holding=holding, limit=PER_KIND + 1
        )
        complete = complete and len(found) <= PER_KIND
        return found[:PER_KIND]

    items: list[Item] = []
    deciding = await read(REFUND_WORK, CaseKind.REFUND)
    # Refunds no one has to decide now may still have a buyer waiting for an answer.
    going = await read(refund_machine.OPEN - REFUND_WORK, CaseKind.REFUND, "awaiting_reply")
    items += [i for c in [*deciding, *going] if (i := _refund(tx, c)) is not None]
    payouts = await read(PAYOUT_WORK, CaseKind.PAYOUT)
    items += [i for c in payouts if (i := _payout(c)) is not None]
    items += [_batch(c) for c in await read([payout_machine.B.OPEN], CaseKind.PAYOUT_BATCH)]
    items += [_anomaly(c) for c in await read(ACTIVE, CaseKind.ANOMALY)]
    feedback = timedelta(hours=tx.svc.settings.timers.intercept_feedback_h)
    intercepts = await read(intercept_machine.OPEN, CaseKind.INTERCEPT)
    items += [_intercept(c, feedback) for c in intercepts]
    far = datetime.max.replace(tzinfo=tx.now.tzinfo)
    items.sort(key=lambda i: (i.due is None, i.due or far, i.case.id))
    return Queue(items, complete)


def _refund(tx: Tx, case: Case) -> Item | None:
    data = RefundData.of(case)
    kinds: set[Kind] = set()
    due = case.deadline_at
    if case.state in REFUND_WORK:
        kinds.add(Kind.REFUND)
    if (awaiting := data.awaiting_reply) is not None:
        kinds.add(Kind.BUYER)
        answer_by = datetime.fromisoformat(awaiting.since) + timedelta(
            minutes=tx.svc.settings.timers.first_response_min
        )
        due = answer_by if due is None else min(due, answer_by)
    if not kinds:
        return None
    status = refund_machine.STATE_TEXT.get(case.state, case.state)
    role = "supervisor" if case.state == refund_machine.S.ESCALATED else data.review_role
    return Item(case, frozenset(kinds), due, status, role=role or "agent")


def _payout(case: Case) -> Item | None:
    data = PayoutData.of(case)
    if case.state != payout_machine.S.REQUESTED and data.batch is not None:
        return None  # its batch is the one to confirm
    status = payout_machine.STATE_TEXT.get(case.state, case.state)
    approved = data.approval.by if data.approval else ""
    return Item(
        case,
        frozenset({Kind.PAYOUT}),
        None,
        status,
        requester=data.payout.requested_by
        if case.state == payout_machine.S.REQUESTED
        else approved,
    )


def _batch(case: Case) -> Item:
    status = payout_machine.BATCH_STATE_TEXT.get(case.state, case.state)
    return Item(case, frozenset({Kind.PAYOUT}), None, f"批量{status}")


def _anomaly(case: Case) -> Item:
    data = AnomalyData.of(case)
    state = ANOMALY_STATE_TEXT.get(case.state, case.state)
    return Item(
        case,
        frozenset({Kind.ANOMALY}),
        case.deadline_at,
        f"{ANOMALY_KIND_TEXT[data.anomaly]} · {state}",
    )


def _intercept(case: Case, feedback: timedelta) -> Item:
    status = intercept_machine.STATE_TEXT.get(case.state, case.state)
    due = case.deadline_at or case.created_at + feedback
    return Item(case, frozenset({Kind.INTERCEPT}), due, status)


# -- whose it is -----------------------------------------------------------------------------


def is_for(tx: Tx, item: Item, staff: StaffSettings) -> bool:
    """Whether `staff` should act on `item`: theirs by assignment, else theirs to decide."""
    case = item.case
    directory = tx.svc.staff
    # Under the two-person rule the requester does not approve, the approver does not pay.
    if tx.svc.settings.payout.two_person_rule and item.requester == staff.id:
        return False
    if case.kind == CaseKind.PAYOUT:
        if case.state == payout_machine.S.REQUESTED:
            return directory.may_approve(staff, case.amount_fen, "agent")
        return bool(payout_machine.FINANCE & set(staff.roles))
    if case.kind == CaseKind.PAYOUT_BATCH:
        return bool(payout_machine.FINANCE & set(staff.roles))
    if case.assignee:
        return case.assignee == staff.id
    if Kind.REFUND in item.kinds:
        return directory.may_approve(staff, case.amount_fen, item.role)
    return bool(DECIDERS & set(staff.roles))


def owner(tx: Tx, item: Item) -> str:
    """Who the item waits for, as the everyone-view groups it."""
    case = item.case
    if case.kind == CaseKind.PAYOUT:
        return "打款审批" if case.state == payout_machine.S.REQUESTED else "财务"
    if case.kind == CaseKind.PAYOUT_BATCH:
        return "财务"
    if case.assignee:
        return tx.svc.staff.name(case.assignee)
    if case.state == refund_machine.S.ESCALATED:
        return "主管"
    return "未认领"


# -- how it reads ----------------------------------------------------------------------------


def line(tx: Tx, item: Item) -> str:
    """The item in full: handle, kind, amount, state, when it is due, what it is about."""
    case = item.case
    parts = [f"{case.handle} [{KIND_TEXT[item.kind]}]"]
    if case.amount_fen:
        parts.append(format_fen(case.amount_fen))
    parts.append(item.status)
    text = " ".join(parts)
    if item.due is not None:
        late = "⛔已超时 " if item.overdue(tx.now) else "时限 "
        text += f" · {late}{tx.local(item.due):%m-%d %H:%M}"
    if Kind.BUYER in item.kinds:
        text += " · 🗨买家待回复"
    if what := _about(case):
        text += f" · {what}"
    return text


def _about(case: Case) -> str:
    """What the case is about in a few words: the buyer's reason, or the parcel."""
    if case.kind in (CaseKind.INTERCEPT, CaseKind.ANOMALY):
        tracking = case.data.get("tracking_no")
        return f"运单 {tracking}" if isinstance(tracking, str) and tracking else case.order_id
    return one_line(case.reason)[:24] or case.order_id


def compact(tx: Tx, item: Item) -> str:
    """The item in one short line: handle, amount, state, due."""
    case = item.case
    parts = [case.handle]
    if case.amount_fen:
        parts.append(format_fen(case.amount_fen))
    parts.append(item.status.split(" · ")[0])
    if item.due is not None:
        mark = "⛔" if item.overdue(tx.now) else ""
        parts.append(f"{mark}{tx.local(item.due):%m-%d %H:%M}")
    return " ".join(parts)


def cases_of(items: Iterable[Item]) -> list[Case]:
    return [i.case for i in items]

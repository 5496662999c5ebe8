"""What a person's approval or rejection carries besides its state step — a note, on the card
and in the audit log — and taking one's own decision back (撤销) while nothing of it went out.

A decision can be taken back only by the person who made it, within `[commands]
undo_window_min`, while the case still stands where the decision put it and the call it
queued for the shop system (approve or reject the refund) has never been claimed by the
dispatcher. The undo takes that outbox item back with compare-and-set in its own
transaction: either the item is gone before any dispatcher leases it, or the undo is refused
— a call that is under way or done is never undone. A payout's approval or rejection calls
nothing; finance confirming it, or a batch holding it, refuses the undo.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.case_data import CaseData, Note
from handlers.config import StaffSettings
from handlers.context import Tx, effect_key
from handlers.errors import ConflictError, PermissionDeniedError
from handlers.message import Reply
from handlers.payout import machine as payout_machine
from handlers.payout.data import PayoutData
from handlers.payout.move import repo as payout_repo
from handlers.refund import machine as refund_machine
from handlers.refund.data import RefundData
from handlers.refund.move import APPROVE_REFUND
from storage.enums import CaseKind
from storage.models import AuditEntry, Case

UNDOABLE = frozenset({"approve", "reject"})
VERB = {"approve": "通过", "reject": "拒绝", "escalate": "升级", "retry": "重试"}
REJECT_REFUND = "commerce.reject_refund"


async def attach_note(
    tx: Tx, case: Case, staff: StaffSettings, text: str, *, on: str, channel: str
) -> None:
    """A note given with a decision (`通过 R29 已核实照片`): on the card beside the decision,
    which stays the card's last action, and in the audit log naming the decision."""
    text = text.strip()[:500]
    data = CaseData.of(case)
    verb = VERB.get(on, on)
    data.notes = [*data.notes, Note(by=staff.id, at=tx.now.isoformat(), text=f"（{verb}）{text}")][
        -20:
    ]
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.audit(case, staff.id, "note", from_state=case.state, channel=channel, text=text, on=on)
    await tx.sync_card(case)


async def last_decision(tx: Tx, case: Case) -> AuditEntry | None:
    """The case's latest approval or rejection that was not taken back already."""
    for entry in await tx.audit_log.latest(case.id):
        if entry.action == "undo":
            return None
        if entry.action in UNDOABLE:
            return entry
    return None


def _assignee_before(entries: list[AuditEntry], decision: AuditEntry) -> str:
    """Who held the case before `decision` (a decision makes its maker the assignee of an
    unclaimed case): the last claim or handover before it, else nobody."""
    for entry in entries:
        if entry.id >= decision.id:
            continue
        if entry.action == "claim":
            return entry.actor
        if entry.action == "handover":
            return str(entry.detail.get("to", ""))
    return ""


async def undo(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """Take back `staff`'s own approval or rejection of `case`, or say why it cannot be."""
    decision = await last_decision(tx, case)
    if decision is None:
        raise ConflictError(f"{case.handle} 没有可以撤销的通过或拒绝")
    verb = VERB[decision.action]
    if decision.actor != staff.id:
        who = tx.svc.staff.name(decision.actor)
        raise PermissionDeniedError(
            f"{case.handle} 是 {who} {verb}的：只能撤销自己的决定，请找 {who} 或主管"
        )
    window = tx.svc.settings.commands.undo_window_min
    if tx.now - decision.at > timedelta(minutes=window):
        raise ConflictError(
            f"{case.handle} 的{verb}已超过 {window:g} 分钟（{tx.local(decision.at):%H:%M}），不能撤销"
        )
    if case.state != decision.to_state:
        raise ConflictError(
            f"{case.handle} 现在是「{_status(case)}」：{verb}之后已有进展，不能撤销"
        )
    if case.kind == CaseKind.REFUND:
        changes = await _take_back_refund(tx, case, decision)
    elif case.kind == CaseKind.PAYOUT:
        changes = _take_back_payout(case, decision)
    else:
        raise ConflictError(f"{case.handle} 不能撤销")
    back = decision.from_state
    if not _closed(case.kind, back):
        changes["closed_at"] = None
    if case.decided_by == staff.id and case.decided_at == decision.at:
        changes |= {"decided_at": None, "decided_by": ""}
    if case.assignee == staff.id:
        changes["assignee"] = _assignee_before(await tx.audit_log.latest(case.id, 50), decision)
    await tx.cases.transition(
        case, back, now=tx.now, last_actor=staff.id, last_action="undo", **changes
    )
    await tx.audit(
        case,
        staff.id,
        "undo",
        from_state=decision.to_state,
        channel=channel,
        undone=decision.action,
        decided_at=decision.at.isoformat(),
    )
    if case.kind == CaseKind.REFUND:
        watching = [k for k, states in refund_machine.TIMER_STATES.items() if back in states]
        await tx.timers.revive(case.id, [*watching, "buyer_reply"], due_after=decision.at)
    else:
        await payout_repo(tx).update(case.id, now=tx.now, **_payout_row(decision.action))
    await tx.sync_card(case)
    return Reply(f"↩ 已撤销 {case.handle} 的{verb}，回到「{_status(case)}」")


async def _take_back_refund(tx: Tx, case: Case, decision: AuditEntry) -> dict[str, Any]:
    trigger = refund_machine.Trigger(decision.action)
    back = refund_machine.RefundState(decision.from_state)
    if refund_machine.TRANSITIONS.get((back, trigger)) != case.state:
        raise ConflictError(f"{case.handle} 不能撤销")
    data = RefundData.of(case)
    if trigger is refund_machine.T.APPROVE:
        if data.sending:
            raise ConflictError(f"{case.handle} 的退款已经提交给店铺系统，不能撤销")
        key = (
            data.approved.key
            if data.approved is not None and data.approved.key
            else effect_key(case, APPROVE_REFUND, data.commerce.attempt)
        )
        data.drop("approved")
    else:
        key = effect_key(case, REJECT_REFUND)
        data.drop("reject_reason", "reject_code")
    data.drop("decision")
    if not await tx.outbox.withdraw(key):
        raise ConflictError(
            f"{case.handle} 的{VERB[decision.action]}已经发给店铺系统（或正在发送），不能撤销"
        )
    return {"data": data.dump()}


def _take_back_payout(case: Case, decision: AuditEntry) -> dict[str, Any]:
    trigger = payout_machine.Trigger(decision.action)
    back = payout_machine.PayoutState(decision.from_state)
    if payout_machine.TRANSITIONS.get((back, trigger)) != case.state:
        raise ConflictError(f"{case.handle} 不能撤销")
    data = PayoutData.of(case)
    if data.batch is not None:
        raise ConflictError(
            f"{case.handle} 已放入批次 {data.batch.handle}，不能撤销：请财务先「取消批次 {data.batch.handle}」"
        )
    data.drop("approval" if trigger is payout_machine.T.APPROVE else "reject")
    return {"data": data.dump()}


def _payout_row(action: str) -> dict[str, Any]:
    if action == "approve":
        return {"approved_by": "", "approved_at": None}
    return {"rejected_by": "", "rejected_at": None}


def _closed(kind: str, state: str) -> bool:
    if kind == CaseKind.REFUND:
        return state in refund_machine.TERMINAL
    return state in payout_machine.TERMINAL


def _status(case: Case) -> str:
    if case.kind == CaseKind.REFUND:
        return refund_machine.STATE_TEXT.get(case.state, case.state)
    return payout_machine.STATE_TEXT.get(case.state, case.state)

"""A platform changing a refund's amount under it: refused when it cannot be, a decision
that moved no money withdrawn (the rules decide again), one that did flagged for a person.
"""

from __future__ import annotations

from handlers.authority import SUPERVISORS
from handlers.context import Tx
from handlers.money import format_fen
from handlers.refund.data import AmountChange, RefundData, facts_of
from handlers.refund.machine import APPROVING, NEEDS_PERSON, REOPENABLE, TERMINAL, RefundState, S, T
from handlers.refund.move import move
from handlers.refund.route import apply_decision
from handlers.schema import RefundUpdated
from storage.models import Case


def amount_problem(case: Case, update: RefundUpdated) -> str:
    """Why the amounts in `update` cannot be taken, judged against what the case holds ("" if
    they can): a refund above its order, or an order amount raised after the request."""
    held_order = RefundData.of(case).order_amount_fen
    amount = case.amount_fen if update.amount is None else update.amount
    order = held_order if update.order_amount is None else update.order_amount
    if (
        held_order is not None
        and update.order_amount is not None
        and update.order_amount > held_order
    ):
        return f"订单金额不能调高（{format_fen(held_order)} → {format_fen(update.order_amount)}）"
    if order is not None and amount > order:
        return f"退款金额 {format_fen(amount)} 超过订单金额 {format_fen(order)}"
    return ""


def amount_change(case: Case, update: RefundUpdated) -> AmountChange | None:
    """The amounts before and after `update`, and what the change means for the case; None
    when neither the amount nor the order amount changes."""
    data = RefundData.of(case)
    held_order = data.order_amount_fen
    amount = case.amount_fen if update.amount is None else update.amount
    order = held_order if update.order_amount is None else update.order_amount
    if amount == case.amount_fen and order == held_order:
        return None
    state = RefundState(case.state)
    if state in (S.SUBMITTED, S.REFUNDED) or (state in APPROVING and data.sending):
        outcome = "flagged"  # money moved (or is moving): never sent again, a person looks
    elif state in REOPENABLE:
        outcome = "reopened"
    elif state in TERMINAL:
        outcome = "recorded"
    else:
        outcome = "changed"
    return AmountChange(
        from_fen=case.amount_fen,
        to=amount,
        order_from=held_order,
        order_to=order,
        approved=data.approved_fen,
        outcome=outcome,
    )


async def amount_refused(tx: Tx, case: Case, why: str) -> None:
    await tx.audit(
        case, "platform", "amount_refused", from_state=case.state, channel="api", why=why
    )
    supervisors = tx.svc.staff.with_role(SUPERVISORS)
    await tx.post(
        case.group_id,
        f"⚠ {case.handle} 平台推送的金额变更未采用：{why}。请在平台后台核对",
        key=f"amount_refused:{case.id}:{case.version}",
        mentions=tx.svc.staff.mentions(supervisors),
        case=case,
    )


async def amount_changed(tx: Tx, case: Case, change: AmountChange) -> None:
    """After the new amount is on the row: withdraw a decision that moved no money (rules
    decide again), or flag one that did; the audit log keeps both amounts."""
    await tx.audit(
        case,
        "platform",
        "amount_changed",
        from_state=case.state,
        channel="api",
        amount_from=change.from_fen,
        amount_to=change.to,
        order_from=change.order_from,
        order_to=change.order_to,
        outcome=change.outcome,
    )
    moved = f"{format_fen(change.from_fen)} → {format_fen(change.to)}"
    directory = tx.svc.staff
    if change.outcome == "reopened":
        await _reopen(tx, case)
        if case.state in NEEDS_PERSON:
            role = RefundData.of(case).review_role or "agent"
            await tx.post(
                case.group_id,
                f"⚠ {case.handle} 金额已变更 {moved}，原审批已撤回，请重新审核",
                key=f"amount_changed:{case.id}:{case.version}",
                mentions=directory.to_mention(approving=(case.amount_fen, role)),
                case=case,
            )
    elif change.outcome == "flagged":
        sent = format_fen(change.approved if change.approved is not None else change.from_fen)
        await tx.post(
            case.group_id,
            f"⚠ {case.handle} 金额已变更 {moved}，退款已按 {sent} 提交，不会再次提交，请人工核对",
            key=f"amount_changed:{case.id}:{case.version}",
            mentions=directory.to_mention(roles=SUPERVISORS),
            case=case,
        )


async def _reopen(tx: Tx, case: Case) -> None:
    """Withdraw the standing approval (its queued ERP call is refused by `begin_submission`) and
    let the rules decide the new amount; anything but an automatic approval goes to review."""
    data = RefundData.of(case)
    data.commerce.drop("error", "sent")
    data.commerce.attempt += 1
    data.drop("approved", "decision")
    await move(tx, case, T.REOPEN, actor="platform", data=data)
    await apply_decision(tx, case, tx.svc.rules.decide(facts_of(case)), again=True)

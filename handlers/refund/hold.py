"""An automatic refund of an unshipped order above `[rules] refund_before_stop_max` waits for the
warehouse: it is sent once 截单 succeeded; when the goods had already left, the case becomes an
intercept (path 2) and nothing is sent; when the stop failed or cannot be confirmed, a person
decides. At or below the threshold, refund and 截单 go together.
"""

from __future__ import annotations

from handlers.context import Tx
from handlers.intercept.request import locate, request_for_refund
from handlers.money import format_fen
from handlers.ports import MANUAL, SHIPPED
from handlers.refund.card import stop_shipment_text
from handlers.refund.data import STOP_UNCONFIRMED, WAITING_FOR_STOP, RefundData, facts_of
from handlers.refund.machine import S, T
from handlers.refund.move import APPROVE_REFUND, approve_payload, arm_timers, move
from handlers.rules import Decision
from storage.models import Case


def waits_for_stop(tx: Tx, case: Case, decision: Decision) -> bool:
    """Whether the refund `decision` approves waits for 截单 before it is sent."""
    if RefundData.of(case).stop_shipment == "done":
        return False
    return tx.svc.rules.waits_for_stop(decision, facts_of(case))


async def on_stop_answer(tx: Tx, case: Case) -> None:
    """The warehouse answered the stop of a refund that waits for it (or the answer was already
    in): stopped → send the refund; not stopped, or not confirmed → a person decides."""
    data = RefundData.of(case)
    if data.stop_wait != WAITING_FOR_STOP:
        return
    status = data.stop_shipment
    if case.state != S.AUTO_APPROVED:
        data.stop_wait = ""
        await tx.cases.touch(case, now=tx.now, data=data.dump())
        return
    if status == "requested" or status.startswith(f"{SHIPPED}: "):
        return  # still asked; goods that left are `goods_left`'s
    manual_refund = tx.svc.settings.commerce_mode(case.shop) == "none"
    if status == "done" or (status == MANUAL and manual_refund):
        await _release(tx, case, data)
    else:
        await _to_a_person(tx, case, data)


async def _release(tx: Tx, case: Case, data: RefundData) -> None:
    """截单 succeeded (or nothing is sent by itself anyway): the approval goes to the shop."""
    data.stop_wait = ""
    await tx.cases.touch(
        case, now=tx.now, data=data.dump(), last_actor="warehouse", last_action="stopped"
    )
    await tx.audit(case, "warehouse", "stopped", from_state=case.state)
    await tx.side_effect(case, APPROVE_REFUND, approve_payload(case), attempt=data.commerce.attempt)
    await tx.sync_card(case)


async def _to_a_person(tx: Tx, case: Case, data: RefundData) -> None:
    """The stop failed, or the warehouse took it without confirming: the automatic approval is
    withdrawn (nothing was sent) and whoever may approve the amount is asked to check first."""
    why = stop_shipment_text(data.stop_shipment)
    _withdraw(data)
    data.stop_wait = STOP_UNCONFIRMED
    await move(tx, case, T.REOPEN, actor="warehouse", data=data)
    await move(tx, case, T.REVIEW, actor="warehouse", first_response_at=case.first_response_at)
    await arm_timers(tx, case)
    directory = tx.svc.staff
    role = data.review_role or "agent"
    await tx.post(
        case.group_id or tx.svc.admin_group,
        f"⚠ {case.handle} 截单没有成功（{why}），自动退款 {format_fen(case.amount_fen)} 没有发出："
        f"请向仓库确认已截单后「通过 {case.handle}」，或「拦截 {case.handle}」再次截单",
        key=f"stop_unconfirmed:{case.id}:{data.stop_attempt}",
        mentions=directory.to_mention(case.assignee, approving=(case.amount_fen, role)),
        case=case,
    )


async def goods_left(tx: Tx, case: Case) -> str:
    """The warehouse says the goods already left while the refund waited for 截单: nothing was
    sent; the refund now waits for an intercept (path 2). What the group is told to do."""
    data = RefundData.of(case)
    _withdraw(data)
    data.stop_wait = ""
    await move(tx, case, T.REOPEN, actor="warehouse", data=data)
    await move(tx, case, T.INTERCEPT, actor="warehouse")
    await arm_timers(tx, case)
    if (await locate(tx, case)).kind != "parcel":
        return f"退款没有发出。请拦截包裹：补上运单号后输入「拦截 {case.handle}」"
    await request_for_refund(tx, case)
    return "退款没有发出，已申请快递拦截，拦截成功后再退款"


def _withdraw(data: RefundData) -> None:
    """Drop the approval that was never sent, so no later call can carry it."""
    data.commerce.drop("error", "sent")
    data.commerce.attempt += 1
    data.drop("approved", "decision")

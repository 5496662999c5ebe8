"""The shop system's side of a refund: what an approval sends, and what its answers mean."""

from __future__ import annotations

from typing import Any

from handlers.context import Tx, effect_key
from handlers.money import fen_to_yuan
from handlers.ports import MANUAL, SHIPPED, VERIFY
from handlers.refund.data import WAITING_FOR_STOP, Approved, RefundData
from handlers.refund.hold import goods_left, on_stop_answer
from handlers.refund.machine import PAYING, RefundState, S, T, path_of
from handlers.refund.move import APPROVE_REFUND, approve_payload, move, unsendable_approval
from storage.models import Case


async def begin_submission(
    tx: Tx, case: Case, key: str, queued: dict[str, Any]
) -> dict[str, Any] | None:
    """What to send the ERP for outbox item `key`, or None when its approval was withdrawn
    (an amount change re-opened review, or it is not the current attempt of an approved
    refund). The case is marked first, so that an amount change arriving while the call is
    under way is flagged for a person rather than re-decided."""
    if unsendable_approval(case, key):
        return None
    data = RefundData.of(case)
    if data.approved is None:
        # Queued before approvals were kept apart: it stands only for the amount it carries.
        if queued.get("amount") != str(fen_to_yuan(case.amount_fen)):
            data.commerce.error = f"金额已变更（提交时 ¥{queued.get('amount')}），请重新审核"
            await move(tx, case, T.FAIL, actor="system", data=data)
            return None
        data.approved = Approved(amount_fen=case.amount_fen, key=key)
    elif data.approved.key != key:
        return None
    if data.commerce.sent != key:
        data.commerce.sent = key
        await tx.cases.touch(case, now=tx.now, data=data.dump())
    code = {"sms_code": queued["sms_code"]} if queued.get("sms_code") else {}
    return approve_payload(case) | code


async def resubmit_with_code(
    tx: Tx, case: Case, data: RefundData, code: str, *, actor: str, channel: str
) -> None:
    """Submit the standing approval again, carrying the platform's SMS code: a new attempt
    under a new key (the first call moved nothing: the platform asked for the code instead)."""
    data.commerce.attempt += 1
    data.commerce.drop("verify", "sent")
    key = effect_key(case, APPROVE_REFUND, data.commerce.attempt)
    if data.approved is not None:
        data.approved.key = key
    await tx.cases.touch(case, now=tx.now, data=data.dump(), last_actor=actor, last_action="code")
    await tx.audit(case, actor, "code", from_state=case.state, channel=channel)
    payload = approve_payload(case) | {"sms_code": code}
    await tx.side_effect(case, APPROVE_REFUND, payload, attempt=data.commerce.attempt)
    await tx.sync_card(case)


async def on_commerce_result(
    tx: Tx,
    case: Case,
    action: str,
    *,
    ok: bool,
    status: str = "",
    error: str = "",
    detail: str = "",
) -> None:
    """The commerce system answered (or gave up on) an approve/reject/stop-shipment call;
    `detail` is what it said (a platform's reason it could not do it itself)."""
    data = RefundData.of(case)
    if action == "commerce.stop_shipment" and ok and status == SHIPPED:
        await left_the_warehouse(tx, case, data, detail)
        return
    if action == "commerce.stop_shipment":
        data.stop_shipment = (
            (status if status in ("done", MANUAL) else "pending") if ok else f"failed: {error}"
        )
        await tx.cases.touch(case, now=tx.now, data=data.dump())
        await tx.sync_card(case)
        await on_stop_answer(tx, case)
        return
    if action == "commerce.reject_refund":
        if not ok or status == MANUAL:
            if ok:
                data.commerce.reject = MANUAL
                if detail:
                    data.commerce.detail = detail
            else:
                data.commerce.error = f"拒绝未能提交：{error}"
            await tx.cases.touch(case, now=tx.now, data=data.dump())
            await tx.sync_card(case)
        return
    if action != APPROVE_REFUND:
        return  # other calls (a message to the buyer) never move the refund
    state = RefundState(case.state)
    if state not in PAYING:
        return
    if ok and status == VERIFY:
        await _wants_code(tx, case, data, detail)
    elif ok and status == MANUAL:
        data.commerce.status = status
        if detail:
            data.commerce.detail = detail
        await move(tx, case, T.MANUAL, actor="system", data=data)
    elif ok:
        data.commerce.status = status
        trigger = T.SUBMITTED if status == "pending" else T.REFUNDED
        if trigger is T.SUBMITTED and state is S.SUBMITTED:
            return
        await move(tx, case, trigger, actor="commerce", data=data)
    else:
        data.commerce.error = error
        await move(tx, case, T.FAIL, actor="commerce", data=data)


async def _wants_code(tx: Tx, case: Case, data: RefundData, detail: str) -> None:
    """The platform sent an SMS code before it agrees: the approval stands and waits for it;
    whoever approved is asked for it."""
    data.commerce.verify = detail or "平台要求短信验证码"
    data.commerce.drop("sent")
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.sync_card(case)
    approver = tx.svc.staff.get(data.approved.by if data.approved else "")
    await tx.post(
        case.group_id,
        f"🔐 {case.handle} 退款需要短信验证码：{data.commerce.verify}。"
        f"收到后回复「验证码 {case.handle} 123456」",
        key=f"verify:{case.id}:{data.commerce.attempt}",
        mentions=tx.svc.staff.mentions([approver]) if approver else (),
        case=case,
    )


# States in which the refund's approval stands (it is going, or went, to the shop system).
PAID_OUT = PAYING | {S.REFUNDED, S.MANUAL}


async def left_the_warehouse(tx: Tx, case: Case, data: RefundData, detail: str) -> None:
    """The warehouse could not stop the order: the goods have left. The refund is now one of
    a shipped parcel (path 2) — never a silent refund of goods on their way: whoever handles
    it is told at once to intercept the parcel, and the card offers it. An automatic refund
    that waited for the stop is not sent at all: it waits for the intercept instead."""
    waited = data.stop_wait == WAITING_FOR_STOP and RefundState(case.state) is S.AUTO_APPROVED
    data.stop_shipment = f"{SHIPPED}: {detail or '仓库已发货'}"
    data.refund.shipping.status = "shipped"
    await tx.cases.touch(
        case,
        now=tx.now,
        data=data.dump(),
        path=path_of(data.kind, "shipped"),
        last_actor="warehouse",
        last_action="shipped",
    )
    await tx.audit(case, "warehouse", "shipped", from_state=case.state, detail=detail)
    await tx.sync_card(case)
    directory = tx.svc.staff
    who = directory.get(case.assignee) if case.assignee else None
    mentions = directory.mentions([who]) if who else directory.to_mention(roles=["supervisor"])
    if waited:
        todo = await goods_left(tx, case)
    else:
        paid = "退款已按未发货批准发出，" if RefundState(case.state) in PAID_OUT else ""
        todo = f"{paid}请拦截包裹：补上运单号后输入「拦截 {case.handle}」"
    await tx.post(
        case.group_id or tx.svc.admin_group,
        f"⚠ {case.handle} 截单失败：仓库已发货（{detail or '无详情'}）。{todo}",
        key=f"shipped:{case.id}:{data.stop_attempt}",
        mentions=mentions,
        case=case,
    )

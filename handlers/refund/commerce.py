"""The shop system's side of a refund: what an approval sends, and what its answers mean."""

from __future__ import annotations

from typing import Any

from handlers.context import Tx
from handlers.money import fen_to_yuan
from handlers.ports import MANUAL
from handlers.refund.data import Approved, RefundData
from handlers.refund.machine import PAYING, RefundState, S, T
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
    return approve_payload(case)


async def on_commerce_result(
    tx: Tx, case: Case, action: str, *, ok: bool, status: str = "", error: str = ""
) -> None:
    """The commerce system answered (or gave up on) an approve/reject/stop-shipment call."""
    data = RefundData.of(case)
    if action == "commerce.stop_shipment":
        data.stop_shipment = (
            (status if status in ("done", MANUAL) else "pending") if ok else f"failed: {error}"
        )
        await tx.cases.touch(case, now=tx.now, data=data.dump())
        await tx.sync_card(case)
        return
    if action == "commerce.reject_refund":
        if not ok or status == MANUAL:
            if ok:
                data.commerce.reject = MANUAL
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
    if ok and status == MANUAL:
        data.commerce.status = status
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

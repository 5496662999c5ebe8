"""What comes back after the money moved: Alipay's answer about a transfer (or the dispatcher
giving up on asking), and the shop system telling the buyer."""

from __future__ import annotations

from typing import Literal

from handlers.context import Tx
from handlers.money import format_fen
from handlers.payout.data import PayoutData
from handlers.payout.machine import S, T
from handlers.payout.move import move, notify_payload, repo, two_person
from handlers.payout.people import confirmers_for
from handlers.ports import MANUAL
from storage.models import Case

# The buyer's confirm-page notices are numbered apart from the one after payment (attempt 1).
CONFIRM_NOTICE = 100
TransferOutcome = Literal["success", "failed", "processing", "waiting_buyer", "unknown"]


async def on_transfer_result(
    tx: Tx,
    case: Case,
    *,
    out_biz_no: str,
    status: TransferOutcome,
    reference: str = "",
    provider_status: str = "",
    detail: str = "",
    confirm: str = "",
) -> None:
    """What the provider said about the transfer `out_biz_no` of `case` (a late answer changes
    nothing); `confirm` is what the buyer's confirm page needs (WeChat Pay `package_info`)."""
    data = PayoutData.of(case)
    transfer = data.transfer
    if case.state != S.PAYING or transfer.out_biz_no != out_biz_no:
        return
    before = transfer.dump()
    transfer.status = provider_status or status.upper()
    transfer.detail = detail[:300]
    data.transfer = transfer
    payouts = repo(tx)
    if status == "success":
        data.reference = reference
        await move(tx, case, T.PAID, actor=tx.svc.settings.payout.provider, data=data)
        await payouts.update(
            case.id,
            now=tx.now,
            paid_at=tx.now,
            reference=reference,
            provider_status=provider_status or "SUCCESS",
        )
    elif status == "failed":
        data.error = detail or provider_status
        await move(tx, case, T.FAIL, actor=tx.svc.settings.payout.provider, data=data)
        await payouts.update(case.id, now=tx.now, provider_status=provider_status or "FAIL")
    else:
        # The case row first, as every other branch and the notification do: two instances
        # recording one bill (the poll, the notification) never wait on each other in a ring.
        if status == "waiting_buyer" and not transfer.waiting:
            await _ask_buyer(tx, case, data, confirm)
        elif transfer.dump() != before:
            await tx.cases.touch(case, now=tx.now, data=data.dump())
            await tx.sync_card(case)
        await payouts.update(case.id, now=tx.now, provider_status=provider_status or status.upper())


async def _ask_buyer(tx: Tx, case: Case, data: PayoutData, confirm: str) -> None:
    """The transfer waits for the buyer to confirm receipt (WeChat Pay 商家转账): the card says
    so, and the shop system is asked to send the buyer the confirm page."""
    data.transfer.waiting = True
    if confirm:
        data.transfer.confirm = confirm
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.sync_card(case)
    payload = notify_payload(case) | {
        "waiting": "buyer_confirm",
        "package_info": data.transfer.confirm,
    }
    attempt = CONFIRM_NOTICE + data.transfer.attempt
    await tx.side_effect(case, "commerce.notify_payout", payload, attempt=attempt)


async def on_transfer_gave_up(tx: Tx, case: Case, *, out_biz_no: str, error: str) -> None:
    """The dispatcher stopped trying. Never sent: failed. Maybe sent: finance must look."""
    data = PayoutData.of(case)
    transfer = data.transfer
    if case.state != S.PAYING or transfer.out_biz_no != out_biz_no:
        return
    row = await repo(tx).get(case.id)
    if row is not None and row.sends == 0:
        data.error = f"转账未发出：{error[:200]}"
        await move(tx, case, T.FAIL, actor="system", data=data)
        return
    transfer.unknown = True
    transfer.detail = error[:300]
    data.transfer = transfer
    await tx.cases.touch(
        case,
        now=tx.now,
        data=data.dump(),
        last_actor="system",
        last_action="fail",
    )
    await tx.sync_card(case)
    finance = confirmers_for(tx.svc.staff, two_person=two_person(tx))
    await tx.post(
        case.group_id,
        f"⚠ {case.handle}（{format_fen(case.amount_fen)}）的{tx.svc.settings.payout.provider_text}"
        f"转账结果未知，请在{tx.svc.settings.payout.provider_text}后台核对："
        f"核对 {case.handle}，或已到账时 打款确认 {case.handle} <流水号>",
        key=f"transfer-unknown:{case.id}:{transfer.attempt}:{transfer.checks}",
        mentions=tx.svc.staff.mentions(finance),
        case=case,
    )


async def on_commerce_result(
    tx: Tx, case: Case, action: str, *, ok: bool, status: str = "", error: str = ""
) -> None:
    """The shop system told the buyer about the payment (or gave up trying, or none is connected)."""
    if action != "commerce.notify_payout":
        return
    data = PayoutData.of(case)
    if ok and status == MANUAL:
        data.buyer_notify_manual = tx.now.isoformat()
    elif ok:
        data.buyer_notified = tx.now.isoformat()
    else:
        data.buyer_notify_error = error[:300]
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.sync_card(case)

"""Every move of a payout or a batch: the state step, the money it records, and the batch
card kept in step with its members."""

from __future__ import annotations

from typing import Any

from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import UsageError
from handlers.money import fen_to_yuan
from handlers.payout.card import batch_summary, footer
from handlers.payout.data import BatchData, PayoutData, Stamp, Transfer
from handlers.payout.identity import out_biz_no
from handlers.payout.machine import (
    BATCH_CLOSED,
    BATCH_MACHINE,
    FINANCE,
    MACHINE,
    SETTLED_ITEMS,
    TERMINAL,
    B,
    BatchTrigger,
    PayoutState,
    S,
    T,
    Trigger,
)
from handlers.step import step
from storage.models import Case
from storage.repositories.payouts import PayoutRepository


def repo(tx: Tx) -> PayoutRepository:
    return PayoutRepository(tx.session)


def two_person(tx: Tx) -> bool:
    return tx.svc.settings.payout.two_person_rule


def ensure(tx: Tx, case: Case, trigger: Trigger) -> PayoutState:
    """Like `advance`, but the refusal says who moved the payout last and when."""
    return MACHINE.ensure(case.handle, case.state, trigger, footer(case, tx.view))


async def move(
    tx: Tx,
    case: Case,
    trigger: Trigger,
    *,
    actor: str,
    channel: str = "",
    data: PayoutData | None = None,
    sync_batch: bool = True,
    **changes: Any,
) -> PayoutState:
    """Advance `case` by `trigger` with compare-and-set; write audit, card, batch and effects."""
    after = await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=TERMINAL,
        channel=channel,
        data=data,
        **changes,
    )
    if after is S.PAID:
        await tx.side_effect(case, "commerce.notify_payout", notify_payload(case))
    if sync_batch:
        await sync_batch_item(tx, case)
    return after


def notify_payload(case: Case) -> dict[str, Any]:
    """What the shop system needs to tell the buyer; the account only masked."""
    data = PayoutData.of(case)
    return {
        "payout_id": case.case_id,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "kind": data.payout.kind or "",
        "amount": str(fen_to_yuan(case.amount_fen)),
        "payee": data.payout.payee,
        "reference": data.reference if data.reference is not None else "",
    }


async def pay(
    tx: Tx,
    case: Case,
    staff: StaffSettings,
    reference: str,
    channel: str,
    *,
    sync_batch: bool = True,
) -> None:
    """Record money that finance moved outside, with its reference (流水号)."""
    if len(reference) > 64:
        raise UsageError("流水号太长（最多 64 个字符）")
    # Recorded against a transfer finance found in the provider's console, it stays its own.
    provider = tx.svc.settings.payout.provider if case.state == S.PAYING else "manual"
    data = PayoutData.of(case)
    data.confirm = Stamp(by=staff.id, at=tx.now.isoformat())
    data.reference = reference
    data.channel = provider
    await move(tx, case, T.PAID, actor=staff.id, channel=channel, data=data, sync_batch=sync_batch)
    await repo(tx).update(
        case.id,
        now=tx.now,
        paid_by=staff.id,
        paid_at=tx.now,
        reference=reference,
        provider=provider,
        provider_status="CONFIRMED" if provider != "manual" else "MANUAL",
    )


async def start_transfer(
    tx: Tx, case: Case, staff: StaffSettings, channel: str, *, sync_batch: bool = True
) -> None:
    """Hand the payout to Alipay: a new out_biz_no per attempt, one outbox item per attempt."""
    data = PayoutData.of(case)
    attempt = data.transfer.attempt + 1
    biz_no = out_biz_no(case.case_id, attempt)
    data.confirm = Stamp(by=staff.id, at=tx.now.isoformat())
    data.transfer = Transfer(attempt=attempt, out_biz_no=biz_no)
    data.channel = tx.svc.settings.payout.provider
    data.error = None
    trigger = T.RETRY if case.state == S.FAILED else T.CONFIRM
    await move(tx, case, trigger, actor=staff.id, channel=channel, data=data, sync_batch=sync_batch)
    await repo(tx).update(
        case.id,
        now=tx.now,
        paid_by=staff.id,
        provider=tx.svc.settings.payout.provider,
        out_biz_no=biz_no,
        sends=0,
        provider_status="",
    )
    await tx.side_effect(case, "payout.transfer", {"out_biz_no": biz_no}, attempt=attempt)


# -- the batch ------------------------------------------------------------------------------


async def move_batch(
    tx: Tx,
    batch: Case,
    trigger: BatchTrigger,
    *,
    actor: str,
    channel: str = "",
    data: BatchData | None = None,
) -> None:
    """Advance the batch by `trigger` with compare-and-set; write audit and card."""
    await step(
        tx,
        batch,
        BATCH_MACHINE,
        trigger,
        actor=actor,
        closed=BATCH_CLOSED,
        channel=channel,
        data=data,
        awaited=False,
    )


async def sync_batch_item(tx: Tx, member: Case) -> None:
    """Reflect a member's new state on its batch card, and settle the batch when all are done."""
    link = PayoutData.of(member).batch
    if not link:
        return
    # Results for several members of one batch land at once: take the batch row's lock so
    # each sees the others' lines (SQLite has one writer anyway).
    batch = await repo(tx).lock_case(link.pk)
    if batch is None or batch.state == B.CANCELLED:
        return
    data = BatchData.of(batch)
    for item in data.items:
        if item.pk == member.id:
            item.state = PayoutState(member.state)
            item.note = member_note(member)
    await tx.cases.touch(batch, now=tx.now, data=data.dump())
    await tx.sync_card(batch)
    await settle_if_done(tx, batch)


def member_note(member: Case) -> str:
    data = PayoutData.of(member)
    if member.state == S.FAILED:
        return (data.error or "")[:80]
    if member.state == S.REJECTED:
        return data.reject.reason[:80] if data.reject else ""
    return ""


async def settle_if_done(tx: Tx, batch: Case) -> None:
    if batch.state != B.CONFIRMED:
        return
    live = [i for i in BatchData.of(batch).items if not i.skipped]
    if not all(i.state in SETTLED_ITEMS for i in live):
        return
    await move_batch(tx, batch, BatchTrigger.SETTLE, actor="system")
    failed = [i for i in live if i.state == S.FAILED]
    text = f"📦 {batch.handle} 完成：{batch_summary(BatchData.of(batch).items)}"
    if failed:
        text += "。失败：" + "、".join(f"{i.handle}（{i.note or '—'}）" for i in failed)
    finance = tx.svc.staff.with_role(FINANCE) if failed else []
    await tx.post(
        batch.group_id,
        text,
        key=f"batch-settled:{batch.id}",
        mentions=tx.svc.staff.mentions(finance),
        case=batch,
    )

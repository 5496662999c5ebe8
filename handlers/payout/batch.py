"""Payout batches: gather approved payouts on one card, confirm them with one tap (each on
its own terms, reported on its own line), or dissolve the batch."""

from __future__ import annotations

from collections.abc import Collection

from handlers import reference
from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, UsageError
from handlers.message import Reply
from handlers.money import format_fen
from handlers.payout.card import footer
from handlers.payout.data import BatchConfirm, BatchData, BatchItem, BatchLink, PayoutData
from handlers.payout.identity import batch_id
from handlers.payout.machine import (
    BATCH_STATE_TEXT,
    FINANCE,
    STATE_TEXT,
    B,
    BatchTrigger,
    PayoutState,
    S,
    advance_batch,
)
from handlers.payout.move import (
    move_batch,
    pay,
    repo,
    settle_if_done,
    start_transfer,
    two_person,
)
from handlers.payout.people import approver_of
from handlers.states import IllegalTransitionError
from storage.enums import CaseKind
from storage.models import Case


async def make_batch(
    tx: Tx,
    staff: StaffSettings,
    refs: list[str],
    *,
    chat_group: str,
    input_id: str,
    channel: str,
    groups: Collection[str] | None,
) -> Reply:
    """Gather approved payouts (the named ones, or all waiting in `groups`, None for every
    group) on one batch card."""
    tx.svc.staff.require(staff, FINANCE, "批量打款")
    new_id = batch_id(input_id)
    existing = await tx.cases.by_case_id(CaseKind.PAYOUT_BATCH, new_id)
    if existing is not None:
        return Reply(f"📦 批次 {existing.handle} 已经生成")
    limit = tx.svc.settings.payout.batch_max
    mine: list[Case] = []
    if refs:
        members, problems = [], []
        for ref in dict.fromkeys(refs):
            case = await reference.find(tx, ref)
            problem = _batch_problem(tx, case, staff, ref)
            if problem:
                problems.append(problem)
            elif case is not None:
                members.append(case)
        if problems:
            raise ConflictError("不能放入批次：" + "；".join(problems))
        if len(members) > limit:
            raise UsageError(f"一个批次最多 {limit} 笔")
    else:
        waiting = await repo(tx).unbatched(S.APPROVED.value, groups=groups, limit=limit * 2)
        mine = [c for c in waiting if two_person(tx) and approver_of(c) == staff.id]
        members = [c for c in waiting if c not in mine][:limit]
    if not members:
        extra = f"（{len(mine)} 笔由你审批，需要其他财务确认）" if mine else ""
        return Reply(f"🎉 没有待确认的已审批打款{extra}")
    group_id = chat_group if tx.svc.settings.group(chat_group) else members[0].group_id
    total = sum(c.amount_fen for c in members)
    data = BatchData(created_by=staff.id, items=[_item(c) for c in members])
    batch = await tx.cases.create(
        kind=CaseKind.PAYOUT_BATCH,
        case_id=new_id,
        state=B.OPEN.value,
        now=tx.now,
        amount_fen=total,
        group_id=group_id,
        data=data.dump(),
        last_actor=staff.id,
        last_action="batch",
    )
    await tx.audit(batch, staff.id, "batch", channel=channel, count=len(members))
    for member in members:
        await _link(tx, member, batch, staff.id, channel)
    await tx.sync_card(batch)
    extra = f"；{len(mine)} 笔由你审批的未放入（双人复核）" if mine else ""
    return Reply(
        f"📦 已生成批量打款 {batch.handle}：{len(members)} 笔，合计 {format_fen(total)}{extra}。"
        f"点卡片上的「全部确认打款」，或输入：打款确认 {batch.handle}"
    )


def _batch_problem(tx: Tx, case: Case | None, staff: StaffSettings, ref: str) -> str:
    if case is None or case.kind != CaseKind.PAYOUT:
        return f"{ref} 不是打款单"
    if case.state != S.APPROVED:
        return f"{case.handle} 是「{STATE_TEXT.get(case.state, case.state)}」"
    if batch := PayoutData.of(case).batch:
        return f"{case.handle} 已在批次 {batch.handle}"
    if two_person(tx) and approver_of(case) == staff.id:
        return f"{case.handle} 由你审批（双人复核）"
    return ""


def _item(case: Case) -> BatchItem:
    info = PayoutData.of(case).payout
    return BatchItem(
        pk=case.id,
        handle=case.handle,
        amount_fen=case.amount_fen,
        payee=" ".join(p for p in (info.payee_name, info.payee) if p),
        state=PayoutState(case.state),
        note="",
    )


async def _link(tx: Tx, member: Case, batch: Case, actor: str, channel: str) -> None:
    data = PayoutData.of(member)
    data.batch = BatchLink(pk=batch.id, handle=batch.handle)
    await tx.cases.touch(member, now=tx.now, data=data.dump())
    await repo(tx).update(member.id, now=tx.now, batch_pk=batch.id)
    await tx.audit(member, actor, "batch", from_state=member.state, channel=channel)
    await tx.sync_card(member)


async def _unlink(tx: Tx, member: Case, actor: str, channel: str) -> None:
    data = PayoutData.of(member)
    data.batch = None
    await tx.cases.touch(member, now=tx.now, data=data.dump())
    await repo(tx).update(member.id, now=tx.now, batch_pk=None)
    await tx.audit(member, actor, "unbatch", from_state=member.state, channel=channel)
    await tx.sync_card(member)


def _in_batch(member: Case, batch: Case) -> bool:
    link = PayoutData.of(member).batch
    return link is not None and link.pk == batch.id


async def confirm_batch(
    tx: Tx, batch: Case, staff: StaffSettings, reference: str, channel: str
) -> Reply:
    """One tap for N payouts; each is confirmed on its own terms and reported on its own line."""
    tx.svc.staff.require(staff, FINANCE, "确认打款")
    try:
        advance_batch(batch.state, BatchTrigger.CONFIRM)
    except IllegalTransitionError:
        status = BATCH_STATE_TEXT.get(batch.state, batch.state)
        raise ConflictError(
            f"{batch.handle} 现在是「{status}」（{footer(batch, tx.view)}）"
        ) from None
    reference = reference.strip()
    if not reference and not tx.svc.settings.payout.transfers:
        raise UsageError(f"请输入这批打款的流水号：打款确认 {batch.handle} <流水号>")
    data = BatchData.of(batch)
    confirmed, skipped = [], []
    for item in data.items:
        member = await tx.cases.get(item.pk)
        item.skipped = ""
        if member is None:
            item.skipped = "找不到这笔打款"
        elif member.state != S.APPROVED:
            item.skipped = STATE_TEXT.get(member.state, member.state)
        elif two_person(tx) and approver_of(member) == staff.id:
            item.skipped = "由你审批，需其他财务确认（双人复核）"
        else:
            if reference:
                await pay(tx, member, staff, reference, channel, sync_batch=False)
            else:
                await start_transfer(tx, member, staff, channel, sync_batch=False)
            item.state = PayoutState(member.state)
            confirmed.append(member)
        if item.skipped:
            skipped.append(f"{item.handle}（{item.skipped}）")
            if member is not None and _in_batch(member, batch):
                await _unlink(tx, member, staff.id, channel)
    if not confirmed:
        raise ConflictError(f"{batch.handle} 里没有可以由你确认的打款：" + "；".join(skipped))
    data.confirm = BatchConfirm(by=staff.id, at=tx.now.isoformat(), ref=reference)
    await move_batch(tx, batch, BatchTrigger.CONFIRM, actor=staff.id, channel=channel, data=data)
    await settle_if_done(tx, batch)
    total = sum(c.amount_fen for c in confirmed)
    done = "已登记打款" if reference else "已确认，正在转账"
    text = f"✅ {batch.handle} {done} {len(confirmed)} 笔，合计 {format_fen(total)}"
    if skipped:
        text += f"；跳过 {len(skipped)} 笔：" + "、".join(skipped)
    return Reply(text)


async def cancel_batch(
    tx: Tx, batch: Case, staff: StaffSettings, channel: str, *, reason: str = ""
) -> Reply:
    """Dissolve an unconfirmed batch; its payouts wait for confirmation one by one again."""
    tx.svc.staff.require(staff, FINANCE, "取消批次")
    try:
        advance_batch(batch.state, BatchTrigger.CANCEL)
    except IllegalTransitionError:
        status = BATCH_STATE_TEXT.get(batch.state, batch.state)
        raise ConflictError(f"{batch.handle} 现在是「{status}」，不能取消") from None
    data = BatchData.of(batch)
    for item in data.items:
        member = await tx.cases.get(item.pk)
        if member is not None and _in_batch(member, batch):
            await _unlink(tx, member, staff.id, channel)
    data.cancel_reason = reason.strip()[:500]
    await move_batch(tx, batch, BatchTrigger.CANCEL, actor=staff.id, channel=channel, data=data)
    return Reply(f"已取消批次 {batch.handle}，其中的打款可以逐笔确认")

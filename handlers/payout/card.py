"""The cards of a payout and of a payout batch: `(case, CardContext) -> Card`, pure."""

from __future__ import annotations

from datetime import datetime

from handlers.config import TRANSFER_PROVIDERS
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Tone
from handlers.money import format_fen
from handlers.payout.data import BatchData, BatchItem, PayoutData
from handlers.payout.machine import (
    ACTION_TEXT,
    BATCH_STATE_TEXT,
    ITEM_TEXT,
    KIND_TEXT,
    STATE_TEXT,
    B,
    BatchState,
    PayoutState,
    S,
)
from handlers.payout.people import approvers_for, confirmers_for, who
from handlers.platforms import PLATFORMS
from handlers.view import CardContext, card_of
from storage.models import Case

TONE = {
    S.REQUESTED: Tone.WARNING,
    S.APPROVED: Tone.WARNING,
    S.PAYING: Tone.INFO,
    S.PAID: Tone.SUCCESS,
    S.REJECTED: Tone.MUTED,
    S.FAILED: Tone.DANGER,
}
BATCH_LINES = 30


def payout_card(case: Case, ctx: CardContext) -> Card:
    state = PayoutState(case.state)
    data = PayoutData.of(case)
    info = data.payout
    kind = info.kind if info.kind is not None else "cashback"
    two_person = ctx.settings.payout.two_person_rule
    fields = [Field("订单", case.order_id or "—")]
    if case.platform or case.shop:
        platform = PLATFORMS.get(case.platform, case.platform)
        fields.append(Field("平台", " · ".join(p for p in (platform, case.shop) if p)))
    fields += [
        Field("金额", format_fen(case.amount_fen)),
        Field("收款", " · ".join(p for p in (info.payee_name, info.payee) if p)),
        Field("原因", case.reason or "—"),
        Field("申请", _step(ctx, info.requested_by, info.requested_at)),
    ]
    if approval := data.approval:
        fields.append(Field("审批", _step(ctx, approval.by, approval.at)))
    if confirm := data.confirm:
        fields.append(Field("打款", _step(ctx, confirm.by, confirm.at)))
    if reference := data.reference:
        fields.append(Field("流水号", reference))
    provider = ctx.settings.payout.provider
    paid_by = data.channel if data.channel is not None else provider
    by = TRANSFER_PROVIDERS.get(paid_by or "")
    fields.append(Field("渠道", f"{by}转账" if by else "财务线下打款"))
    if batch := data.batch:
        fields.append(Field("批次", batch.handle))
    lines = [f"📝 {who(ctx.staff, n.by)}：{n.text}" for n in data.notes[-3:]]
    transfer = data.transfer
    if state is S.PAYING and transfer.unknown:
        lines.append(
            f"⚠ {by or '转账'}转账结果未知（{transfer.detail[:120]}）。"
            f"请在{by or '后台'}核对：核对 {case.handle}，或已到账时 打款确认 {case.handle} <流水号>"
        )
    elif state is S.PAYING and transfer.status == "DEALING":
        lines.append(f"⏳ {by or '转账'}处理中，到账后卡片会更新")
    if state is S.PAYING and transfer.waiting:
        lines.append(
            "⏳ 微信支付已受理，等买家在微信里确认收款（已请店铺系统把确认页发给买家）；"
            "买家不确认时转账到期自动撤销"
        )
    if state is S.FAILED and (error := data.error):
        lines.append(f"⚠ 失败原因：{error}")
    if state is S.REJECTED and (rejected := data.reject):
        lines.append(f"拒绝原因：{rejected.reason}（{who(ctx.staff, rejected.by)}）")
    if state is S.PAID and data.buyer_notified:
        lines.append("已通知买家")
    elif state is S.PAID and (why := data.buyer_notify_error):
        lines.append(f"⚠ 未能通知买家：{why[:120]}")
    elif state is S.PAID and data.buyer_notify_manual:
        lines.append("⚠ 未接店铺系统，没有通知买家：请在平台后台告知买家已打款")
    mentions: tuple[Mention, ...] = ()
    if state is S.REQUESTED:
        mentions = ctx.staff.mentions(approvers_for(ctx.staff, case, two_person=two_person))
    elif state is S.APPROVED and not data.batch:
        mentions = ctx.staff.mentions(confirmers_for(ctx.staff, case, two_person=two_person))
    return card_of(
        case,
        title=f"{KIND_TEXT.get(kind, '打款')} {case.handle} · {format_fen(case.amount_fen)}",
        status=STATE_TEXT[state],
        tone=TONE[state],
        fields=tuple(fields),
        buttons=payout_buttons(state, provider, data),
        lines=tuple(lines),
        footer=footer(case, ctx),
        mentions=mentions,
    )


def payout_buttons(state: PayoutState, provider: str, data: PayoutData) -> tuple[Button, ...]:
    reject = Button("reject", "拒绝", ButtonStyle.DANGER, ask="原因")
    by_hand = Button("paid", "已打款 · 填流水号", ButtonStyle.PRIMARY, ask="流水号")
    if state is S.REQUESTED:
        return (Button("approve", "通过", ButtonStyle.PRIMARY), reject)
    if state is S.APPROVED:
        if provider in TRANSFER_PROVIDERS:
            return (Button("paid", "确认打款", ButtonStyle.PRIMARY), reject)
        return (by_hand, reject)
    if state is S.FAILED:
        if provider in TRANSFER_PROVIDERS:
            return (Button("repay", "重新打款", ButtonStyle.PRIMARY), reject)
        return (by_hand, reject)
    if state is S.PAYING and data.transfer.unknown:
        return (Button("recheck", "核对转账", ButtonStyle.PRIMARY),)
    return ()


def batch_card(case: Case, ctx: CardContext) -> Card:
    state = BatchState(case.state)
    data = BatchData.of(case)
    items = data.items
    live = [i for i in items if not i.skipped]
    if state is B.OPEN:
        # Until the tap, only what is still approved would be paid.
        live = [i for i in live if i.state == S.APPROVED]
    total = sum(i.amount_fen for i in live)
    fields = [
        Field("笔数", str(len(live))),
        Field("合计", format_fen(total)),
        Field("发起", _step(ctx, data.created_by, case.created_at.isoformat())),
    ]
    if confirm := data.confirm:
        text = _step(ctx, confirm.by, confirm.at)
        fields.append(Field("确认", f"{text} · 流水号 {confirm.ref}" if confirm.ref else text))
    status = BATCH_STATE_TEXT[state]
    if state in (B.CONFIRMED, B.SETTLED):
        fields.append(Field("结果", batch_summary(items)))
    lines = [_item_line(i) for i in items[:BATCH_LINES]]
    if len(items) > BATCH_LINES:
        lines.append(f"…另有 {len(items) - BATCH_LINES} 笔")
    if state is B.CANCELLED and (why := data.cancel_reason):
        lines.append(f"取消原因：{why}")
    buttons: tuple[Button, ...] = ()
    mentions: tuple[Mention, ...] = ()
    if state is B.OPEN:
        buttons = (
            Button(
                "paid",
                f"全部确认打款（{len(live)} 笔 {format_fen(total)}）",
                ButtonStyle.PRIMARY,
                ask="" if ctx.settings.payout.transfers else "流水号",
            ),
            Button("unbatch", "取消批次"),
        )
        two_person = ctx.settings.payout.two_person_rule
        mentions = ctx.staff.mentions(confirmers_for(ctx.staff, two_person=two_person))
    tone = {B.OPEN: Tone.WARNING, B.SETTLED: Tone.SUCCESS, B.CANCELLED: Tone.MUTED}.get(
        state, Tone.INFO
    )
    if state is B.SETTLED and any(i.state == S.FAILED for i in live):
        tone = Tone.DANGER
    return card_of(
        case,
        title=f"批量打款 {case.handle} · {len(live)} 笔 · {format_fen(total)}",
        status=status,
        tone=tone,
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=footer(case, ctx),
        mentions=mentions,
    )


def batch_summary(items: list[BatchItem]) -> str:
    parts = []
    for state, label in ((S.PAID, "已打款"), (S.PAYING, "转账中"), (S.FAILED, "失败")):
        chosen = [i for i in items if not i.skipped and i.state == state]
        if chosen:
            fen = sum(i.amount_fen for i in chosen)
            parts.append(f"{label} {len(chosen)} 笔 {format_fen(fen)}")
    if skipped := [i for i in items if i.skipped]:
        parts.append(f"跳过 {len(skipped)} 笔")
    return " · ".join(parts) or "—"


def _item_line(item: BatchItem) -> str:
    head = f"{item.handle} {format_fen(item.amount_fen)} {item.payee}"
    if item.skipped:
        return f"{head} · 跳过：{item.skipped}"
    text = ITEM_TEXT.get(item.state, item.state)
    return f"{head} · {text}" + (f"：{item.note}" if item.note else "")


def footer(case: Case, ctx: CardContext) -> str:
    """Who moved the case last, and when."""
    return ctx.footer(case, ACTION_TEXT, who=who(ctx.staff, case.last_actor))


def _step(ctx: CardContext, actor: str, at: str | None) -> str:
    if not at:
        return who(ctx.staff, actor)
    return f"{who(ctx.staff, actor)} · {ctx.local(datetime.fromisoformat(at)):%m-%d %H:%M}"

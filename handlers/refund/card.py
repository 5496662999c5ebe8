"""A refund's card, drawn from the case and a card context alone: pure, no database."""

from __future__ import annotations

from datetime import datetime

from handlers.conversation import card_lines as conversation_lines
from handlers.message import SAFE_URL, Button, ButtonStyle, Card, Field, Mention, Pill, Tone
from handlers.money import format_fen, yuan_to_fen
from handlers.platforms import PLATFORMS
from handlers.ports import MANUAL, SHIPPED
from handlers.refund.data import STOP_UNCONFIRMED, WAITING_FOR_STOP, RefundData, Shipping
from handlers.refund.machine import (
    ACTION_TEXT,
    DECIDABLE,
    KIND_TEXT,
    NEEDS_PERSON,
    OPEN,
    SHIPPING_TEXT,
    STATE_TEXT,
    TIMER_STATES,
    RefundState,
    S,
)
from handlers.view import CardContext, card_of
from storage.models import Case

TONE = {
    **dict.fromkeys(NEEDS_PERSON, Tone.WARNING),
    S.ESCALATED: Tone.DANGER,
    S.FAILED: Tone.DANGER,
    S.MANUAL: Tone.WARNING,
    S.REFUNDED: Tone.SUCCESS,
    **dict.fromkeys({S.REJECTED, S.CANCELLED, S.CLOSED_BY_PLATFORM}, Tone.MUTED),
}
STOP_TEXT = {
    "requested": "已通知仓库截单，等待结果",
    "pending": "已提交，等仓库确认",
    MANUAL: "❗ 未接仓库/ERP，没有通知仓库：请手动截单",
    "done": "✅ 已截单",
}


def refund_card(case: Case, ctx: CardContext) -> Card:
    data = RefundData.of(case)
    state = RefundState(case.state)
    directory = ctx.staff
    fields = [
        Field("订单", case.order_id),
        Field("平台", f"{PLATFORMS.get(case.platform, case.platform)} · {case.shop}"),
        Field("金额", _amount_text(case, data)),
        *_approved_field(case, data),
    ]
    # Before the rest: WeCom shows only a card's first six fields.
    if case.deadline_at is not None and state in OPEN:
        fields.append(Field("平台时限", _deadline_text(case.deadline_at, ctx)))
    fields += [
        Field("原因", case.reason or "—"),
        Field("物流", _shipping_text(data.refund.shipping)),
    ]
    if data.stop_shipment:
        fields.append(Field("截单", stop_shipment_text(data.stop_shipment)))
    if (shown := data.intercept) is not None:
        fields.append(Field("拦截", f"{shown.handle} · {shown.text}"))
    if nick := data.refund.buyer.nick:
        fields.append(Field("买家", nick))
    if (complaint := data.complaint) is not None:
        at = ctx.local(datetime.fromisoformat(complaint.at))
        fields.append(Field("投诉风险", f"买家提到「{complaint.word}」· {at:%m-%d %H:%M}"))
    if case.assignee:
        fields.append(Field("处理人", directory.name(case.assignee)))
    if (decided := data.decision) is not None:
        at = ctx.local(datetime.fromisoformat(decided.at))
        what = ACTION_TEXT.get(decided.action, decided.action)
        fields.append(Field("决定", f"{directory.name(decided.by)} {what} · {at:%m-%d %H:%M}"))
    if data.rule:
        fields.append(Field("规则", data.rule))
    if link := back_office(data.refund.back_office_url):
        fields.append(link)
    lines = _amount_lines(data, state)
    lines += [f"📝 {directory.name(n.by)}：{n.text}" for n in data.notes[-3:]]
    lines += _state_lines(case, data, state, ctx)
    lines += conversation_lines(case, ctx)
    buttons = refund_buttons(state) + _intercept_button(data, state)
    if state in OPEN and ctx.templates:
        buttons += (Button("templates", "常用回复"),)
    mentions: tuple[Mention, ...] = ()
    if state is S.ESCALATED:
        mentions = directory.to_mention(approving=(case.amount_fen, "supervisor"))
    late = overdue(case, ctx)
    return card_of(
        case,
        title=f"{KIND_TEXT.get(data.kind, '退款')} {case.handle} · {format_fen(case.amount_fen)}",
        status=_status_text(case, state, ctx),
        tone=Tone.DANGER if late else TONE.get(state, Tone.INFO),
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=footer(case, ctx),
        mentions=mentions,
        pills=_pills(data, late),
        alert=late,
    )


def overdue(case: Case, ctx: CardContext) -> bool:
    """Past the platform's deadline while the refund still waits on the merchant: the platform
    may agree on its own any moment."""
    return (
        case.deadline_at is not None
        and case.deadline_at <= ctx.now
        and case.state in TIMER_STATES["deadline_warn"]
    )


def _pills(data: RefundData, late: bool) -> tuple[Pill, ...]:
    pills = [Pill("已超时", Tone.DANGER)] if late else []
    if data.complaint is not None:
        pills.append(Pill("⚠ 投诉风险", Tone.DANGER))
    if (waiting := data.awaiting_reply) is not None and waiting.overdue:
        pills.append(Pill("买家待回复", Tone.WARNING))
    return tuple(pills)


def _state_lines(case: Case, data: RefundData, state: RefundState, ctx: CardContext) -> list[str]:
    """What the card says about where the refund stands, beyond its status."""
    lines: list[str] = []
    if state is S.ESCALATED and (esc := data.escalation) is not None:
        who = ctx.staff.name(esc.by)
        if via := esc.intercept:
            lines.append(f"⬆ {who} 登记 {via} 拦截成功，退款超出其权限 {esc.limit}，请主管审批")
        else:
            lines.append(f"⬆ {who} 建议通过，超出其权限 {esc.limit}，请主管审批")
    if state is S.FAILED and (error := data.commerce.error):
        lines.append(f"⚠ 失败原因：{error}")
    if state is S.MANUAL:
        why = data.commerce.detail or "未接店铺系统，退款没有发出"
        lines.append(
            f"⚠ {why}：请在店铺后台手动退款 {format_fen(_standing_fen(case, data))}，"
            f"完成后点「已手动退款」或输入「已退款 {case.handle}」"
        )
    if state is S.REJECTED and data.commerce.reject == MANUAL:
        why = data.commerce.detail or "未接店铺系统，拒绝没有提交到平台"
        lines.append(f"⚠ {why}：请在店铺后台手动拒绝")
    if state is S.AUTO_APPROVED and data.stop_wait == WAITING_FOR_STOP:
        limit = format_fen(yuan_to_fen(ctx.settings.rules.refund_before_stop_max))
        lines.append(
            f"⏸ 退款 {format_fen(_standing_fen(case, data))} 等仓库截单成功后才发出"
            f"（超过 {limit} 的未发货自动退款先截单）"
        )
    if (
        state in NEEDS_PERSON
        and data.stop_wait == STOP_UNCONFIRMED
        and data.stop_shipment != "done"
        and not data.stop_shipment.startswith(f"{SHIPPED}: ")
    ):
        lines.append(
            f"⚠ 截单没有成功，自动退款没有发出：请向仓库确认已截单后「通过 {case.handle}」，"
            f"或「拦截 {case.handle}」再次截单"
        )
    if state in (S.APPROVED, S.AUTO_APPROVED) and (wanted := data.commerce.verify):
        lines.append(f"🔐 {wanted}：回复「验证码 {case.handle} <验证码>」")
    if state in REFUSABLE and (reasons := data.refund.reject_reasons):
        listed = " · ".join(f"{i} {r.text}" for i, r in enumerate(reasons[:9], 1))
        lines.append(f"拒绝理由（平台）：{listed}；拒绝时写「拒绝 {case.handle} <编号> [说明]」")
    if state is S.INSPECTING and data.qc is not None and data.qc.result == "failed":
        lines.append(f"⚠ 仓库质检不通过 {data.qc.detail}".rstrip())
    if state in (S.CANCELLED, S.CLOSED_BY_PLATFORM) and (detail := data.end_detail):
        lines.append(f"平台：{detail}")
    if state is S.REJECTED and (why := data.reject_reason):
        lines.append(f"拒绝原因：{why}")
    return lines


# States a person may refuse the refund in, where the platform's reasons are worth showing.
REFUSABLE = DECIDABLE | {S.WAITING_RETURN, S.RETURNING}


def _status_text(case: Case, state: RefundState, ctx: CardContext) -> str:
    """Without a shop system nothing is being submitted, not even for a moment; a refund that
    waits for 截单 is not being submitted yet."""
    if state is S.AUTO_APPROVED and RefundData.of(case).stop_wait == WAITING_FOR_STOP:
        return "自动通过 · 等截单成功后退款"
    if state in (S.APPROVED, S.AUTO_APPROVED) and ctx.settings.commerce_mode(case.shop) == "none":
        return STATE_TEXT[state].split(" · ")[0]
    return STATE_TEXT[state]


def refund_buttons(state: RefundState) -> tuple[Button, ...]:
    approve = Button("approve", "通过", ButtonStyle.PRIMARY)
    reject = Button("reject", "拒绝", ButtonStyle.DANGER, ask="原因")
    claim = Button("claim", "认领")
    if state in (S.AWAITING_REVIEW, S.ESCALATED):
        return (approve, reject, claim)
    if state is S.INSPECTING:
        return (Button("approve", "质检通过 · 退款", ButtonStyle.PRIMARY), reject, claim)
    if state is S.WAITING_INTERCEPT:
        return (Button("approve", "不等拦截 · 直接退款"), claim)
    if state in (S.WAITING_RETURN, S.RETURNING):
        return (reject, claim)
    if state is S.FAILED:
        return (Button("retry", "重新提交", ButtonStyle.PRIMARY), claim)
    if state is S.MANUAL:
        return (Button("refunded", "已手动退款", ButtonStyle.PRIMARY), claim)
    return ()


def _intercept_button(data: RefundData, state: RefundState) -> tuple[Button, ...]:
    """A shipped parcel nobody has asked the carrier about yet can be intercepted from the card."""
    if (
        data.refund.shipping.status in ("shipped", "in_transit")
        and state in (S.AWAITING_REVIEW, S.ESCALATED, S.WAITING_INTERCEPT)
        and data.intercept is None
    ):
        return (Button("intercept", "拦截包裹"),)
    return ()


# Seller back offices a card may link to: a link the platform data names elsewhere is not shown.
BACK_OFFICES = {
    "fxg.jinritemai.com": "在抖店后台打开",
    "refund2.taobao.com": "在淘宝后台打开",
    "refund2.tmall.com": "在天猫后台打开",
}


def back_office(url: str) -> Field | None:
    """The case's page in its seller back office, when the address is one of theirs."""
    host = url.removeprefix("https://").split("/", 1)[0]
    if not url.startswith("https://") or host not in BACK_OFFICES or not SAFE_URL.fullmatch(url):
        return None
    return Field("后台", BACK_OFFICES[host], url=url)


def footer(case: Case, ctx: CardContext) -> str:
    return ctx.footer(case, ACTION_TEXT)


def stop_shipment_text(status: str) -> str:
    """How the warehouse stop (截单) stands, in words."""
    if status.startswith("failed: "):
        return f"❌ 截单失败：{status[8:]}"
    if status.startswith(f"{SHIPPED}: "):
        return f"❌ 仓库已发货：{status.split(': ', 1)[1]}，需要拦截包裹"
    return STOP_TEXT.get(status, status)


def _standing_fen(case: Case, data: RefundData) -> int:
    amount = data.approved_fen
    return case.amount_fen if amount is None else amount


def _amount_text(case: Case, data: RefundData) -> str:
    order_amount = data.order_amount_fen
    if order_amount is not None and order_amount != case.amount_fen:
        return f"{format_fen(case.amount_fen)}（订单 {format_fen(order_amount)}，部分退款）"
    return format_fen(case.amount_fen)


def _approved_field(case: Case, data: RefundData) -> tuple[Field, ...]:
    approved = data.approved_fen
    if approved is None or approved == case.amount_fen:
        return ()
    return (Field("批准金额", format_fen(approved)),)


def _amount_lines(data: RefundData, state: RefundState) -> list[str]:
    """What the card says about amounts the platform changed (or tried to) under it."""
    lines: list[str] = []
    if (refused := data.amount_refused) is not None:
        lines.append(f"⚠ 平台推送的金额变更未采用：{refused.why}，请人工核对")
    change = data.amount_change
    if change is None:
        return lines
    moved = f"{format_fen(change.from_fen)} → {format_fen(change.to)}"
    if change.outcome == "flagged":
        sent = format_fen(change.approved if change.approved is not None else change.from_fen)
        lines.append(f"⚠ 金额已变更 {moved}：退款已按 {sent} 提交，不会再次提交，请人工核对")
    elif change.outcome == "reopened" and state in NEEDS_PERSON:
        lines.append(f"⚠ 金额已变更 {moved}，原审批已撤回，需重新审核")
    elif state in OPEN:
        lines.append(f"金额已变更 {moved}")
    return lines


def _shipping_text(shipping: Shipping) -> str:
    status = SHIPPING_TEXT.get(shipping.status, shipping.status or "—")
    parcel = " ".join(p for p in (shipping.carrier, shipping.tracking_no) if p)
    return f"{status} · {parcel}" if parcel else status


def _deadline_text(deadline: datetime, ctx: CardContext) -> str:
    left = deadline - ctx.now
    hours = left.total_seconds() / 3600
    when = f"{ctx.local(deadline):%m-%d %H:%M}"
    if hours <= 0:
        return f"{when}（已超时）"
    if hours < 1:
        return f"{when}（剩 {int(left.total_seconds() // 60)} 分钟）"
    return f"{when}（剩 {hours:.0f} 小时）"

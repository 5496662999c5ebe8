"""An intercept's card, drawn from the case and a card context alone: pure, no database."""

from __future__ import annotations

from datetime import datetime

from handlers.intercept.data import InterceptData, recorded_by
from handlers.intercept.machine import (
    ACTION_TEXT,
    SOURCE_TEXT,
    STATE_TEXT,
    WAITING,
    InterceptState,
    S,
)
from handlers.logistics.carriers import carrier_hotline, carrier_name, parcel_text
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Tone
from handlers.money import format_fen
from handlers.view import CardContext, card_of
from storage.models import Case

TONE = {
    S.OVERDUE: Tone.DANGER,
    S.ERROR: Tone.DANGER,
    S.INTERCEPTED: Tone.SUCCESS,
    S.FAILED: Tone.MUTED,
}


def intercept_card(case: Case, ctx: CardContext) -> Card:
    data = InterceptData.of(case)
    state = InterceptState(case.state)
    return card_of(
        case,
        title=f"拦截 {case.handle} · {parcel_text(data.carrier, data.tracking_no)}",
        status=STATE_TEXT[state],
        tone=TONE.get(state, Tone.INFO),
        fields=_fields(case, data, state, ctx),
        buttons=_buttons(state),
        lines=_lines(case, data, state, ctx),
        footer=footer(case, ctx),
        mentions=supervisors(case, ctx) if state in (S.OVERDUE, S.ERROR) else (),
    )


def _fields(
    case: Case, data: InterceptData, state: InterceptState, ctx: CardContext
) -> tuple[Field, ...]:
    directory = ctx.staff
    fields = [
        Field("运单", parcel_text(data.carrier, data.tracking_no)),
        Field("订单", case.order_id or "—"),
    ]
    if data.refunds:
        handles = "、".join(r.handle for r in data.refunds)
        fields.append(Field("关联退款", f"{handles} · {format_fen(case.amount_fen)}"))
    if data.anomalies:
        fields.append(Field("关联异常", "、".join(a.handle for a in data.anomalies)))
    who = data.requested_by
    via = "" if who.startswith("rule:") else f"（{SOURCE_TEXT.get(data.source, '')}）"
    requested = ctx.local(case.created_at)
    fields.append(Field("申请", f"{directory.name(who)}{via} · {requested:%m-%d %H:%M}"))
    answer = data.carrier_answer
    if answer is not None and answer.detail and answer.status != "manual":
        fields.append(Field("快递受理", answer.detail))
    if (result := data.result) is not None:
        at = ctx.local(datetime.fromisoformat(result.at))
        by = "快递" if result.by == "carrier" else directory.name(result.by)
        shown = result.detail or STATE_TEXT[state]
        fields.append(Field("结果", f"{shown}（{by} · {at:%m-%d %H:%M}）"))
    if hotline := carrier_hotline(data.carrier):
        fields.append(Field("快递电话", f"{carrier_name(data.carrier)} {hotline}"))
    return tuple(fields)


def _lines(
    case: Case, data: InterceptData, state: InterceptState, ctx: CardContext
) -> tuple[str, ...]:
    lines: list[str] = []
    hours = ctx.settings.timers.intercept_feedback_h
    if state is S.OVERDUE:
        lines.append(f"🔺 {hours * 2:g} 小时没有快递反馈，请主管联系快递确认")
    if state is S.ERROR:
        lines.append(f"⚠ 未能提交给快递：{data.error or '接口多次失败'}")
    if state is S.MANUAL:
        hotline = carrier_hotline(data.carrier)
        call = f"（{carrier_name(data.carrier)} {hotline}）" if hotline else ""
        lines.append(
            f"☎ 未接快递系统，拦截申请没有发出：请电话联系快递拦截{call}，"
            f"再点「拦截成功 / 拦截失败」或输入「拦截成功 {case.handle}」「拦截失败 {case.handle} 原因」登记结果"
        )
    if state is S.INTERCEPTED and case.amount_fen:
        then = (
            "退款自动继续"
            if recorded_by(case) == "carrier"
            else "退款在登记人的权限内继续，超出的等主管审批"
        )
        lines.append(f"✅ 快件退回中，挽回 {format_fen(case.amount_fen)}，{then}")
    if state is S.FAILED and data.refunds:
        lines.append("退款已转入退货流程：等买家寄回")
    for late in data.late_results[-1:]:
        lines.append(f"⚠ 迟到的快递反馈：{late.result} {late.detail}".strip())
    return tuple(lines)


def _buttons(state: InterceptState) -> tuple[Button, ...]:
    confirm = (
        Button("intercepted", "拦截成功", ButtonStyle.PRIMARY),
        Button("intercept_failed", "拦截失败", ButtonStyle.DANGER),
    )
    if state in WAITING:
        return confirm
    if state is S.ERROR:
        return (Button("intercept", "重新提交", ButtonStyle.PRIMARY), *confirm)
    return ()


def footer(case: Case, ctx: CardContext) -> str:
    return ctx.footer(case, ACTION_TEXT)


def supervisors(case: Case, ctx: CardContext) -> tuple[Mention, ...]:
    """Who may approve the amount the intercept saves: they follow up when it stalls."""
    return ctx.staff.to_mention(approving=(case.amount_fen, "supervisor"))

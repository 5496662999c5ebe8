"""The anomaly card: what the team sees of one parcel's problem, drawn from the case alone."""

from __future__ import annotations

from handlers.logistics.carriers import TRACKING_TEXT, carrier_hotline, carrier_name, parcel_text
from handlers.logistics.data import AnomalyData
from handlers.logistics.machine import (
    ACTIVE,
    ANOMALY_ACTION_TEXT,
    ANOMALY_STATE_TEXT,
    KIND_TEXT,
    RISK_TEXT,
    SEVERE,
    A,
    Anomaly,
    AnomalyState,
)
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Tone
from handlers.money import format_fen
from handlers.view import CardContext, card_of
from storage.models import Case


def anomaly_mentions(case: Case, kind: Anomaly, ctx: CardContext) -> tuple[Mention, ...]:
    roles = ["agent", "supervisor"] if kind in SEVERE else ["agent"]
    return ctx.staff.to_mention(case.assignee, roles=roles)


def anomaly_footer(case: Case, ctx: CardContext) -> str:
    return ctx.footer(case, ANOMALY_ACTION_TEXT, who="物流" if case.last_actor == "carrier" else "")


def _fields(case: Case, data: AnomalyData, ctx: CardContext) -> list[Field]:
    scan = data.scan
    last = ctx.local(scan.at) if scan else None
    fields = [
        Field("运单", parcel_text(data.carrier, data.tracking_no)),
        Field("订单", case.order_id or "—"),
        Field("物流状态", TRACKING_TEXT.get(data.status, data.status or "—")),
        Field(
            "最后轨迹",
            f"{last:%m-%d %H:%M} {scan.description}".strip() if last and scan else "—",
        ),
        Field("异常", data.detail if data.detail is not None else KIND_TEXT[data.anomaly]),
    ]
    if data.refund:
        amount = f" · {format_fen(case.amount_fen)}" if case.amount_fen else ""
        fields.append(Field("关联退款", f"{data.refund.handle}{amount}"))
    if data.count > 1 and data.seen_at is not None:
        seen = ctx.local(data.seen_at)
        fields.append(Field("次数", f"第 {data.count} 次 · 最近 {seen:%m-%d %H:%M}"))
    if data.intercept:
        fields.append(Field("拦截", f"{data.intercept.handle} · {data.intercept.text}"))
    if case.assignee:
        fields.append(Field("处理人", ctx.staff.name(case.assignee)))
    if hotline := carrier_hotline(data.carrier):
        fields.append(Field("快递电话", f"{carrier_name(data.carrier)} {hotline}"))
    return fields


def _lines(state: AnomalyState, data: AnomalyData, ctx: CardContext) -> list[str]:
    if state in ACTIVE:
        return [f"⚠ {RISK_TEXT[data.anomaly]}"]
    if state is A.RECOVERED and (recovered := data.recovered):
        at = ctx.local(recovered.at)
        return [f"✅ {at:%m-%d %H:%M} 有新轨迹：{recovered.description or '已更新'}"]
    if state is A.IGNORED and (why := data.ignore_reason):
        return [f"忽略原因：{why}"]
    if state is A.RESHIPPED:
        return ["已决定补发：请在 ERP 安排补发，原件货损可向快递索赔"]
    return []


def _tone(state: AnomalyState, kind: Anomaly) -> Tone:
    if state is A.OPEN:
        return Tone.DANGER if kind in SEVERE else Tone.WARNING
    if state is A.CONTACTING:
        return Tone.WARNING
    if state in (A.RESHIPPED, A.RECOVERED):
        return Tone.SUCCESS
    if state is A.IGNORED:
        return Tone.MUTED
    return Tone.INFO


def anomaly_card(case: Case, ctx: CardContext) -> Card:
    data = AnomalyData.of(case)
    kind = data.anomaly
    state = AnomalyState(case.state)
    buttons: tuple[Button, ...] = ()
    if state in ACTIVE:
        buttons = (
            Button("intercept", "拦截", ButtonStyle.PRIMARY),
            Button("reship", "补发"),
            *((Button("contact_carrier", "联系快递"),) if state is A.OPEN else ()),
            Button("ignore", "忽略", ButtonStyle.DANGER),
        )
    return card_of(
        case,
        title=f"物流异常 {case.handle} · {KIND_TEXT[kind]}",
        status=ANOMALY_STATE_TEXT[state],
        tone=_tone(state, kind),
        fields=tuple(_fields(case, data, ctx)),
        buttons=buttons,
        lines=tuple(_lines(state, data, ctx)),
        footer=anomaly_footer(case, ctx),
        mentions=anomaly_mentions(case, kind, ctx) if state is A.OPEN else (),
    )

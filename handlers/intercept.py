"""Intercept cases (X): ask the carrier to stop a parcel, follow up, and let the refund move on.

Intercepted on the carrier's word → the refund is approved without a click; recorded by a
person → only within that person's refund limit; failed → it waits for the return.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from bot.settings import StaffSettings
from handlers import refund as refund_flow
from handlers.context import Tx
from handlers.errors import ConflictError, UsageError
from handlers.logistics import flow as logistics
from handlers.logistics.carriers import carrier_hotline, carrier_name, parcel_key, parcel_text
from handlers.message import Button, ButtonStyle, Card, Field, Mention, Reply, Tone
from handlers.money import format_fen
from handlers.schema import InterceptResult
from handlers.states import Machine
from handlers.step import step
from integrations.carrier.client import CarrierAnswer
from storage.enums import CaseKind
from storage.models import Case, Timer

log = logging.getLogger(__name__)

# Requested by the rule (a shipped refund enters waiting_intercept), a card button or
# `拦截 R12`; one case per parcel, the carrier call goes through the outbox under an
# idempotency key. The carrier's answer or an `intercept.result` settles it. No answer in
# `[timers] intercept_feedback_h` → a reminder, after as long again → the supervisors.
# An unshipped order is stopped at the warehouse instead (截单); a delivered one cannot
# be intercepted and the reply says why.


class InterceptState(StrEnum):
    REQUESTED = "requested"
    SENT = "sent"
    # No carrier system is connected ([carrier] mode = "none"): nothing was sent, call them.
    MANUAL = "manual"
    OVERDUE = "overdue"
    INTERCEPTED = "intercepted"
    FAILED = "intercept_failed"
    ERROR = "submit_error"


class InterceptTrigger(StrEnum):
    SENT = "sent"
    MANUAL = "manual"
    INTERCEPTED = "intercepted"
    FAIL = "fail"
    ESCALATE = "escalate"
    ERROR = "error"
    RETRY = "retry"


S, T = InterceptState, InterceptTrigger
WAITING = frozenset({S.REQUESTED, S.SENT, S.MANUAL, S.OVERDUE})
OPEN = WAITING | {S.ERROR}
DONE = frozenset({S.INTERCEPTED, S.FAILED})

TRANSITIONS: dict[tuple[InterceptState, InterceptTrigger], InterceptState] = {
    (S.REQUESTED, T.SENT): S.SENT,
    (S.REQUESTED, T.MANUAL): S.MANUAL,
    **{(s, T.INTERCEPTED): S.INTERCEPTED for s in OPEN},
    **{(s, T.FAIL): S.FAILED for s in OPEN},
    **{(s, T.ESCALATE): S.OVERDUE for s in (S.REQUESTED, S.SENT, S.MANUAL)},
    **{(s, T.ERROR): S.ERROR for s in (S.REQUESTED, S.OVERDUE)},
    (S.ERROR, T.RETRY): S.REQUESTED,
}

STATE_TEXT: dict[str, str] = {
    S.REQUESTED: "已申请 · 提交快递中",
    S.SENT: "快递已受理 · 等待拦截结果",
    S.MANUAL: "未接快递系统 · 请电话联系快递拦截",
    S.OVERDUE: "快递超时未反馈 · 已升级主管",
    S.INTERCEPTED: "拦截成功",
    S.FAILED: "拦截失败",
    S.ERROR: "未能提交给快递",
}
TRIGGER_TEXT: dict[str, str] = {
    T.INTERCEPTED: "登记拦截成功",
    T.FAIL: "登记拦截失败",
    T.RETRY: "重新提交",
}
MACHINE = Machine("这个拦截", InterceptState, TRANSITIONS, STATE_TEXT, TRIGGER_TEXT)
advance = MACHINE.advance
ACTION_TEXT = {
    "requested": "申请拦截",
    T.SENT.value: "快递受理",
    T.MANUAL.value: "转电话拦截（未接快递系统）",
    T.INTERCEPTED.value: "拦截成功",
    T.FAIL.value: "拦截失败",
    T.ESCALATE.value: "超时升级",
    T.ERROR.value: "提交失败",
    T.RETRY.value: "重新提交",
    "linked": "关联单据",
    "late_result": "迟到的快递反馈",
    "carrier_confirmed": "快递确认拦截成功",
}
SOURCE_TEXT = {"rule": "规则", "command": "命令", "anomaly": "物流异常"}
# How an intercept shows on its refunds' and anomalies' cards: coarser than its own states,
# so the carrier's "accepted" does not redraw every linked card.
LINK_TEXT: dict[str, str] = {
    S.REQUESTED: "拦截中 · 等快递结果",
    S.SENT: "拦截中 · 等快递结果",
    S.MANUAL: "待电话拦截",
    S.OVERDUE: "快递超时未反馈 · 已升级主管",
    S.INTERCEPTED: "拦截成功",
    S.FAILED: "拦截失败",
    S.ERROR: "未能提交给快递",
}


def recorded_by(case: Case) -> str:
    """Whose word settled the intercept: "carrier" once the carrier's API or event said so."""
    if case.data.get("carrier_confirmed"):
        return "carrier"
    return str(case.data.get("result", {}).get("by", ""))


def shown_on_links(case: Case) -> dict[str, str]:
    return {"handle": case.handle, "text": LINK_TEXT[case.state]}


def footer(case: Case, tx: Tx) -> str:
    if not case.last_action:
        return ""
    who = tx.svc.staff.name(case.last_actor)
    what = ACTION_TEXT.get(case.last_action, case.last_action)
    return f"{who} {what} · {tx.local(case.updated_at):%m-%d %H:%M}"


async def move(
    tx: Tx,
    case: Case,
    trigger: InterceptTrigger,
    *,
    actor: str,
    channel: str = "",
    data: dict[str, Any] | None = None,
) -> InterceptState:
    """Advance `case` with compare-and-set; audit, card, and what arriving in the state means."""
    after = await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=DONE,
        footer=footer(case, tx),
        channel=channel,
        data=data,
    )
    if after in DONE:
        await tx.timers.cancel(case.id)
    elif after is S.REQUESTED:
        await _send(tx, case)
    await _show_on_links(tx, case, actor=actor)
    return after


# -- asking the carrier ---------------------------------------------------------------------


@dataclass(frozen=True)
class Whereabouts:
    """Where a refund's goods are, as far as we know."""

    kind: Literal["parcel", "unshipped", "delivered", "unknown"]
    carrier: str = ""
    tracking_no: str = ""
    at: datetime | None = None


async def locate(tx: Tx, refund: Case) -> Whereabouts:
    """The refund's parcel: tracking we hold wins over the shipping status on the refund."""
    shipping = refund.data.get("refund", {}).get("shipping", {})
    carrier, number = str(shipping.get("carrier", "")), str(shipping.get("tracking_no", ""))
    status = str(shipping.get("status", "unshipped"))
    parcel = await tx.parcels.get(carrier, number) if carrier and number else None
    if parcel is None:
        parcel = next(iter(await tx.parcels.for_order(refund.order_id)), None)
    if parcel is not None:
        if parcel.status == "delivered":
            return Whereabouts(
                "delivered", parcel.carrier, parcel.tracking_no, parcel.last_event_at
            )
        if parcel.status == "created" and status == "unshipped":
            return Whereabouts("unshipped", parcel.carrier, parcel.tracking_no)
        return Whereabouts("parcel", parcel.carrier, parcel.tracking_no)
    if status == "unshipped":
        return Whereabouts("unshipped")
    if status == "delivered":
        return Whereabouts("delivered", carrier, number)
    if carrier and number:
        return Whereabouts("parcel", carrier, number)
    return Whereabouts("unknown")


def _link_of(case: Case) -> dict[str, Any]:
    return {"pk": case.id, "handle": case.handle, "case_id": case.case_id}


async def request(
    tx: Tx,
    *,
    carrier: str,
    tracking_no: str,
    actor: str,
    source: str,
    refund: Case | None = None,
    anomaly: Case | None = None,
    channel: str = "",
) -> tuple[Case, bool]:
    """The parcel's intercept case; created and sent to the carrier when new (True)."""
    existing = await tx.cases.by_case_id(CaseKind.INTERCEPT, parcel_key(carrier, tracking_no))
    if existing is not None:
        await _link(tx, existing, refund, anomaly, actor=actor)
        return existing, False
    origin = refund or anomaly
    shop, platform = (origin.shop, origin.platform) if origin else ("", "")
    group = tx.svc.route(shop=shop, platform=platform, kind=CaseKind.INTERCEPT.value)
    case = await tx.cases.create(
        kind=CaseKind.INTERCEPT,
        case_id=parcel_key(carrier, tracking_no),
        state=S.REQUESTED.value,
        now=tx.now,
        shop=shop,
        platform=platform,
        order_id=origin.order_id if origin else "",
        amount_fen=refund.amount_fen if refund else 0,
        group_id=group.id if group else "",
        reason=SOURCE_TEXT.get(source, source),
        data={
            "carrier": carrier,
            "tracking_no": tracking_no,
            "source": source,
            "requested_by": actor,
            "attempt": 1,
            "refunds": [_link_of(refund) | {"amount_fen": refund.amount_fen}] if refund else [],
            "anomalies": [_link_of(anomaly)] if anomaly else [],
        },
        last_actor=actor,
        last_action="requested",
        first_response_at=tx.now,
    )
    await tx.audit(case, actor, "requested", channel=channel, source=source)
    if group is None:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 拦截 {case.handle}（{parcel_text(carrier, tracking_no)}）没有匹配的群，"
            "请检查 [[groups]] 的路由配置",
            key=f"unrouted:{case.id}",
            case=case,
        )
    await tx.sync_card(case)
    await _send(tx, case)
    await _show_on_links(tx, case, actor=actor)
    return case, True


async def _send(tx: Tx, case: Case) -> None:
    """Queue the carrier call (its id is the idempotency key) and start the feedback clock."""
    data = case.data
    attempt = int(data.get("attempt", 1))
    refunds = data.get("refunds", [])
    payload = {
        "carrier": data["carrier"],
        "tracking_no": data["tracking_no"],
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "refund_ids": [r["case_id"] for r in refunds],
        "reason": "买家申请退款，拦截退回" if refunds else "物流异常，拦截退回",
    }
    await tx.side_effect(case, "carrier.intercept", payload, attempt=attempt)
    hours = tx.svc.settings.timers.intercept_feedback_h
    await tx.schedule(
        case,
        "intercept_feedback",
        tx.after(hours=hours),
        suffix=f"{attempt}:1",
        stage=1,
        attempt=attempt,
    )


async def _link(
    tx: Tx, case: Case, refund: Case | None, anomaly: Case | None, *, actor: str
) -> None:
    """Attach another refund or anomaly to an existing intercept; a settled one settles it too."""
    data = dict(case.data)
    refunds, anomalies = list(data.get("refunds", [])), list(data.get("anomalies", []))
    amount = case.amount_fen
    if refund is not None and all(r["pk"] != refund.id for r in refunds):
        refunds.append(_link_of(refund) | {"amount_fen": refund.amount_fen})
        amount += refund.amount_fen
    if anomaly is not None and all(a["pk"] != anomaly.id for a in anomalies):
        anomalies.append(_link_of(anomaly))
    if (refunds, anomalies) == (data.get("refunds", []), data.get("anomalies", [])):
        return
    data |= {"refunds": refunds, "anomalies": anomalies}
    await tx.cases.touch(case, now=tx.now, data=data, amount_fen=amount)
    await tx.audit(case, actor, "linked", from_state=case.state)
    await tx.sync_card(case)
    await _show_on_links(tx, case, actor=actor)


async def _show_on_links(tx: Tx, case: Case, *, actor: str) -> None:
    """Reflect the intercept on its refunds' and anomalies' cards; a settled one moves them on."""
    state = InterceptState(case.state)
    shown = shown_on_links(case)
    for link in case.data.get("refunds", []):
        refund = await tx.cases.get(link["pk"])
        if refund is None or refund.data.get("intercept") == shown:
            continue
        data = {**refund.data, "intercept": shown}
        waiting = refund.state == refund_flow.S.WAITING_INTERCEPT
        if state is S.INTERCEPTED and waiting:
            await refund_flow.on_intercepted(
                tx, refund, recorded_by=recorded_by(case), via=case.handle, actor=actor, data=data
            )
        elif state is S.FAILED and waiting:
            trigger = refund_flow.T.INTERCEPT_FAILED
            await refund_flow.move(tx, refund, trigger, actor=actor, data=data)
        else:
            await tx.cases.touch(refund, now=tx.now, data=data)
            await tx.sync_card(refund)
    for link in case.data.get("anomalies", []):
        anomaly = await tx.cases.get(link["pk"])
        if anomaly is None or anomaly.data.get("intercept") == shown:
            continue
        data = {**anomaly.data, "intercept": shown}
        if state is S.FAILED and anomaly.state == logistics.A.INTERCEPTING:
            await logistics.move_anomaly(tx, anomaly, logistics.AT.REOPEN, actor=actor, data=data)
        else:
            await tx.cases.touch(anomaly, now=tx.now, data=data)
            await tx.sync_card(anomaly)


async def request_for_refund(tx: Tx, refund: Case) -> None:
    """The rule sent a shipped refund to wait for an intercept: ask the carrier now."""
    where = await locate(tx, refund)
    actor = refund.last_actor or "system"
    if where.kind == "parcel":
        await request(
            tx,
            carrier=where.carrier,
            tracking_no=where.tracking_no,
            actor=actor,
            source="rule",
            refund=refund,
        )
        return
    if where.kind == "unshipped":
        await refund_flow.request_stop_shipment(tx, refund, actor=actor)
        return
    text = (
        f"⚠ {refund.handle} 的包裹轨迹显示已签收（{parcel_text(where.carrier, where.tracking_no)}），"
        "无法拦截：请按已收货处理"
        if where.kind == "delivered"
        else f"⚠ {refund.handle} 显示已发货但没有运单号，无法自动拦截：补充运单号后输入「拦截 {refund.handle}」"
    )
    await tx.post(refund.group_id, text, key=f"intercept-unavailable:{refund.id}", case=refund)


# -- answers ---------------------------------------------------------------------------------


async def decide(
    tx: Tx,
    case: Case,
    *,
    ok: bool,
    actor: str,
    detail: str = "",
    result: str = "",
    channel: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    outcome = "intercepted" if ok else "failed"
    data = {
        **(data if data is not None else case.data),
        "outcome": outcome,
        "result": {
            "result": result or outcome,
            "detail": detail,
            "by": actor,
            "at": tx.now.isoformat(),
        },
    }
    await move(tx, case, T.INTERCEPTED if ok else T.FAIL, actor=actor, channel=channel, data=data)


async def on_carrier_answer(tx: Tx, case: Case, answer: CarrierAnswer) -> None:
    """The carrier's synchronous answer to our request."""
    state = InterceptState(case.state)
    if state in DONE:
        return
    data = {
        **case.data,
        "carrier_answer": {
            "status": answer.status,
            "detail": answer.detail,
            "at": tx.now.isoformat(),
        },
        "error": "",
    }
    if answer.status in ("accepted", "manual"):
        if state is S.REQUESTED:
            trigger, actor = (
                (T.SENT, "carrier") if answer.status == "accepted" else (T.MANUAL, "system")
            )
            await move(tx, case, trigger, actor=actor, data=data)
        return
    await decide(
        tx,
        case,
        ok=answer.status == "intercepted",
        actor="carrier",
        detail=answer.detail,
        data=data,
    )


async def on_carrier_gave_up(tx: Tx, case: Case, error: str) -> None:
    """The request could not be delivered to the carrier (dead-lettered)."""
    if (InterceptState(case.state), T.ERROR) not in TRANSITIONS:
        return
    await move(tx, case, T.ERROR, actor="system", data={**case.data, "error": error[:300]})


async def on_result(tx: Tx, result: InterceptResult) -> Case | None:
    """An `intercept.result` event: the carrier's final word on a parcel."""
    case = await tx.cases.by_case_id(
        CaseKind.INTERCEPT, parcel_key(result.carrier, result.tracking_no)
    )
    if case is None:
        log.warning(
            "intercept.result for %s %s, which nobody asked to intercept",
            result.carrier,
            result.tracking_no,
        )
        return None
    ok = result.result in ("intercepted", "returned")
    if InterceptState(case.state) in DONE:
        if ok and case.state == S.INTERCEPTED and recorded_by(case) != "carrier":
            await _carrier_confirms(tx, case, result)
        elif (case.data.get("outcome") == "intercepted") != ok:
            late = [
                *case.data.get("late_results", []),
                {"result": result.result, "detail": result.detail, "at": tx.now.isoformat()},
            ]
            await tx.cases.touch(case, now=tx.now, data={**case.data, "late_results": late[-5:]})
            await tx.audit(
                case, "carrier", "late_result", from_state=case.state, result=result.result
            )
            await tx.sync_card(case)
            await tx.post(
                case.group_id,
                f"⚠ 拦截 {case.handle}：快递反馈「{'拦截成功' if ok else '拦截失败'}」，"
                f"与已登记的「{STATE_TEXT[InterceptState(case.state)]}」不一致，请核实",
                key=f"late:{case.id}:{len(late)}",
                mentions=_supervisors(tx, case),
                case=case,
            )
        return case
    await decide(tx, case, ok=ok, actor="carrier", detail=result.detail, result=result.result)
    return case


async def _carrier_confirms(tx: Tx, case: Case, result: InterceptResult) -> None:
    """The carrier agrees with what a person recorded: refunds held for that person's limit
    go on, on the carrier's word."""
    confirmed = {"result": result.result, "detail": result.detail, "at": tx.now.isoformat()}
    await tx.cases.touch(
        case,
        now=tx.now,
        data={**case.data, "carrier_confirmed": confirmed},
        last_actor="carrier",
        last_action="carrier_confirmed",
    )
    await tx.audit(case, "carrier", "carrier_confirmed", from_state=case.state)
    await tx.sync_card(case)
    for link in case.data.get("refunds", []):
        refund = await tx.cases.get(link["pk"])
        if refund is not None:
            await refund_flow.on_carrier_confirmed(tx, refund, via=case.handle)


# -- following up ---------------------------------------------------------------------------


def _owners(tx: Tx, case: Case) -> tuple[Mention, ...]:
    directory = tx.svc.staff
    if (staff := directory.get(str(case.data.get("requested_by", "")))) is not None:
        return (directory.mention(staff),)
    return directory.mentions(directory.with_role(["agent"]))


def _supervisors(tx: Tx, case: Case) -> tuple[Mention, ...]:
    directory = tx.svc.staff
    return directory.mentions(directory.approvers(case.amount_fen, "supervisor"))


async def on_feedback_timer(tx: Tx, case: Case, timer: Timer) -> None:
    """No carrier answer yet: remind, then escalate to the supervisors."""
    attempt = int(timer.payload.get("attempt", 1))
    if case.state not in OPEN or attempt != int(case.data.get("attempt", 1)):
        return
    hours = tx.svc.settings.timers.intercept_feedback_h
    carrier = case.data["carrier"]
    what = f"拦截 {case.handle}（{parcel_text(carrier, case.data['tracking_no'])}）"
    if int(timer.payload.get("stage", 1)) == 1:
        hotline = carrier_hotline(carrier)
        call = f"（{carrier_name(carrier)}客服 {hotline}）" if hotline else ""
        await tx.post(
            case.group_id,
            f"⏰ {what}已 {hours:g} 小时没有快递反馈，请联系快递{call}确认能否拦截，"
            "再在卡片上登记结果",
            key=timer.id,
            mentions=_owners(tx, case),
            case=case,
        )
        await tx.schedule(
            case,
            "intercept_feedback",
            tx.after(hours=hours),
            suffix=f"{attempt}:2",
            stage=2,
            attempt=attempt,
        )
        return
    if (InterceptState(case.state), T.ESCALATE) in TRANSITIONS:
        await move(tx, case, T.ESCALATE, actor="system")
    await tx.post(
        case.group_id,
        f"🔺 {what}已 {hours * 2:g} 小时没有快递反馈，已升级主管跟进",
        key=timer.id,
        mentions=_supervisors(tx, case),
        case=case,
    )


# -- the card -------------------------------------------------------------------------------


def intercept_card(case: Case, tx: Tx) -> Card:
    data = case.data
    state = InterceptState(case.state)
    directory = tx.svc.staff
    requested = tx.local(case.created_at)
    fields = [
        Field("运单", parcel_text(data["carrier"], data["tracking_no"])),
        Field("订单", case.order_id or "—"),
    ]
    if refunds := data.get("refunds"):
        handles = "、".join(r["handle"] for r in refunds)
        fields.append(Field("关联退款", f"{handles} · {format_fen(case.amount_fen)}"))
    if anomalies := data.get("anomalies"):
        fields.append(Field("关联异常", "、".join(a["handle"] for a in anomalies)))
    who = str(data.get("requested_by", ""))
    via = "" if who.startswith("rule:") else f"（{SOURCE_TEXT.get(data.get('source', ''), '')}）"
    fields.append(Field("申请", f"{directory.name(who)}{via} · {requested:%m-%d %H:%M}"))
    answer = data.get("carrier_answer")
    if answer and answer.get("detail") and answer.get("status") != "manual":
        fields.append(Field("快递受理", answer["detail"]))
    if result := data.get("result"):
        at = tx.local(datetime.fromisoformat(result["at"]))
        who = "快递" if result["by"] == "carrier" else directory.name(result["by"])
        fields.append(
            Field(
                "结果", f"{result.get('detail') or STATE_TEXT[state]}（{who} · {at:%m-%d %H:%M}）"
            )
        )
    if hotline := carrier_hotline(data["carrier"]):
        fields.append(Field("快递电话", f"{carrier_name(data['carrier'])} {hotline}"))
    lines: list[str] = []
    hours = tx.svc.settings.timers.intercept_feedback_h
    if state is S.OVERDUE:
        lines.append(f"🔺 {hours * 2:g} 小时没有快递反馈，请主管联系快递确认")
    if state is S.ERROR:
        lines.append(f"⚠ 未能提交给快递：{data.get('error') or '接口多次失败'}")
    if state is S.MANUAL:
        hotline = carrier_hotline(data["carrier"])
        call = f"（{carrier_name(data['carrier'])} {hotline}）" if hotline else ""
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
    if state is S.FAILED and data.get("refunds"):
        lines.append("退款已转入退货流程：等买家寄回")
    for late in data.get("late_results", [])[-1:]:
        lines.append(f"⚠ 迟到的快递反馈：{late['result']} {late.get('detail', '')}".strip())
    confirm = (
        Button("intercepted", "拦截成功", ButtonStyle.PRIMARY),
        Button("intercept_failed", "拦截失败", ButtonStyle.DANGER),
    )
    buttons: tuple[Button, ...] = ()
    if state in WAITING:
        buttons = confirm
    elif state is S.ERROR:
        buttons = (Button("intercept", "重新提交", ButtonStyle.PRIMARY), *confirm)
    tone = {
        S.OVERDUE: Tone.DANGER,
        S.ERROR: Tone.DANGER,
        S.INTERCEPTED: Tone.SUCCESS,
        S.FAILED: Tone.MUTED,
    }.get(state, Tone.INFO)
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        title=f"拦截 {case.handle} · {parcel_text(data['carrier'], data['tracking_no'])}",
        status=STATE_TEXT[state],
        tone=tone,
        fields=tuple(fields),
        buttons=buttons,
        lines=tuple(lines),
        footer=footer(case, tx),
        mentions=_supervisors(tx, case) if state in (S.OVERDUE, S.ERROR) else (),
    )


# -- people ---------------------------------------------------------------------------------


async def intercept(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    """`拦截 R12` / `拦截 A3` / `拦截 X3` (resubmit), or the card button."""
    if case.kind == CaseKind.REFUND:
        return await _for_refund(tx, case, staff, channel)
    if case.kind == CaseKind.ANOMALY:
        return await _for_anomaly(tx, case, staff, channel)
    if case.kind == CaseKind.INTERCEPT:
        return await _again(tx, case, staff, channel)
    raise UsageError(f"{case.handle} 不能拦截：请用退款单号（R12）或物流异常单号（A3）")


async def _for_refund(tx: Tx, refund: Case, staff: StaffSettings, channel: str) -> Reply:
    where = await locate(tx, refund)
    if where.kind == "delivered":
        when = f" · {tx.local(where.at):%m-%d %H:%M} 签收" if where.at else ""
        parcel = (
            f"（{parcel_text(where.carrier, where.tracking_no)}{when}）" if where.carrier else ""
        )
        raise ConflictError(
            f"{refund.handle} 的包裹已签收{parcel}，快递无法拦截。"
            "买家已经收到货：仅退款按已收货审核，或与买家协商退货退款"
        )
    if where.kind == "unshipped":
        asked = await refund_flow.request_stop_shipment(tx, refund, actor=staff.id, channel=channel)
        if asked:
            return Reply(
                f"🛑 {refund.handle} 还没有发货，不用快递拦截：已通知仓库截单，结果会显示在卡片上"
            )
        status = refund_flow.stop_shipment_text(refund.data)
        return Reply(f"{refund.handle} 已经在截单：{status}")
    if where.kind == "unknown":
        raise ConflictError(
            f"{refund.handle} 显示已发货，但没有运单号，无法拦截：请补充运单号，或在 ERP 里手动拦截"
        )
    case, new = await request(
        tx,
        carrier=where.carrier,
        tracking_no=where.tracking_no,
        actor=staff.id,
        source="command",
        refund=refund,
        channel=channel,
    )
    if new:
        return Reply(
            f"🚚 已向{carrier_name(where.carrier)}申请拦截 {where.tracking_no}（{case.handle}），"
            "结果会更新在卡片上"
        )
    return Reply(
        f"{refund.handle} 的包裹已在拦截（{case.handle}）：{STATE_TEXT[InterceptState(case.state)]}"
    )


async def _for_anomaly(tx: Tx, anomaly: Case, staff: StaffSettings, channel: str) -> Reply:
    logistics.advance_anomaly(anomaly.state, logistics.AT.INTERCEPT)
    carrier, number = anomaly.data["carrier"], anomaly.data["tracking_no"]
    parcel = await tx.parcels.get(carrier, number)
    if parcel is not None and parcel.status == "delivered":
        raise ConflictError(f"{anomaly.handle} 的包裹已签收，快递无法拦截")
    linked = anomaly.data.get("refund")
    refund = await tx.cases.get(linked["pk"]) if linked else None
    case, new = await request(
        tx,
        carrier=carrier,
        tracking_no=number,
        actor=staff.id,
        source="anomaly",
        refund=refund,
        anomaly=anomaly,
        channel=channel,
    )
    await logistics.move_anomaly(
        tx,
        anomaly,
        logistics.AT.INTERCEPT,
        actor=staff.id,
        channel=channel,
        data={**anomaly.data, "intercept": shown_on_links(case)},
        assignee=anomaly.assignee or staff.id,
    )
    verb = "已申请拦截" if new else "已在拦截"
    return Reply(f"🚚 {anomaly.handle}：{verb} {parcel_text(carrier, number)}（{case.handle}）")


async def _again(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    state = InterceptState(case.state)
    if state is S.ERROR:
        attempt = int(case.data.get("attempt", 1)) + 1
        await tx.timers.cancel(case.id, ["intercept_feedback"])
        data = {**case.data, "attempt": attempt, "error": "", "requested_by": staff.id}
        await move(tx, case, T.RETRY, actor=staff.id, channel=channel, data=data)
        return Reply(f"🔁 已重新提交拦截 {case.handle}（第 {attempt} 次）")
    if state is S.FAILED:
        detail = case.data.get("result", {}).get("detail", "")
        raise ConflictError(
            f"{case.handle} 已拦截失败{f'（{detail}）' if detail else ''}：退款按退货流程处理"
        )
    return Reply(f"{case.handle}：{STATE_TEXT[state]}（{footer(case, tx)}）")


async def resolve(tx: Tx, ref_case: Case) -> Case:
    """The intercept behind a handle: X3 itself, or the one shown on a refund or anomaly."""
    if ref_case.kind == CaseKind.INTERCEPT:
        return ref_case
    shown = ref_case.data.get("intercept")
    if isinstance(shown, dict) and (case := await tx.cases.by_handle(str(shown.get("handle")))):
        return case
    raise UsageError(f"{ref_case.handle} 没有拦截单：请用拦截单号（如 X3）")


async def confirm(
    tx: Tx, ref_case: Case, staff: StaffSettings, *, ok: bool, detail: str, channel: str
) -> Reply:
    """A person records the carrier's answer (given by phone or in the carrier's system)."""
    case = await resolve(tx, ref_case)
    trigger = T.INTERCEPTED if ok else T.FAIL
    if (InterceptState(case.state), trigger) not in TRANSITIONS:
        raise ConflictError(
            f"{case.handle} 已经是「{STATE_TEXT[InterceptState(case.state)]}」（{footer(case, tx)}）"
        )
    await decide(
        tx,
        case,
        ok=ok,
        actor=staff.id,
        detail=detail.strip()[:200] or ("人工确认拦截成功" if ok else "人工确认拦截失败"),
        channel=channel,
    )
    if not ok:
        return Reply(f"已登记 {case.handle} 拦截失败，关联退款转入退货流程")
    held = [
        refund
        for link in case.data.get("refunds", [])
        if (refund := await tx.cases.get(link["pk"])) is not None
        and refund_flow.held_for(refund, case.handle)
    ]
    if not held:
        return Reply(f"✅ {case.handle} 已登记拦截成功，关联退款自动继续")
    directory = tx.svc.staff
    who, mentions = directory.who_may_approve(max(r.amount_fen for r in held), "supervisor")
    refunds = "、".join(f"{r.handle} {format_fen(r.amount_fen)}" for r in held)
    return Reply(
        f"✅ {case.handle} 已登记拦截成功。{refunds} 超出 {staff.display} 的退款权限"
        f"（{directory.limit_text(staff)}），已转主管审批：{who}",
        mentions=mentions,
    )

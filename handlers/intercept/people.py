"""What people do with intercepts from the group: `拦截 R12` / `拦截 A3` / `拦截 X3`, the card
button, and recording the carrier's answer given by phone or in the carrier's system.
"""

from __future__ import annotations

from handlers.config import StaffSettings
from handlers.context import Tx
from handlers.errors import ConflictError, UsageError
from handlers.intercept.card import footer
from handlers.intercept.data import InterceptData, shown_on_links
from handlers.intercept.flow import decide
from handlers.intercept.machine import STATE_TEXT, TRANSITIONS, InterceptState, S, T
from handlers.intercept.move import move
from handlers.intercept.request import locate, request
from handlers.logistics import flow as logistics
from handlers.logistics import machine as anomaly_machine
from handlers.logistics.carriers import carrier_name, parcel_text
from handlers.logistics.data import AnomalyData
from handlers.message import Reply
from handlers.money import format_fen
from handlers.refund.card import stop_shipment_text
from handlers.refund.data import RefundData
from handlers.refund.parcel import held_for, request_stop_shipment
from storage.enums import CaseKind
from storage.models import Case


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
        asked = await request_stop_shipment(tx, refund, actor=staff.id, channel=channel)
        if asked:
            return Reply(
                f"🛑 {refund.handle} 还没有发货，不用快递拦截：已通知仓库截单，结果会显示在卡片上"
            )
        status = stop_shipment_text(RefundData.of(refund).stop_shipment)
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
    anomaly_machine.advance_anomaly(anomaly.state, anomaly_machine.AT.INTERCEPT)
    seen = AnomalyData.of(anomaly)
    carrier, number = seen.carrier, seen.tracking_no
    parcel = await tx.parcels.get(carrier, number)
    if parcel is not None and parcel.status == "delivered":
        raise ConflictError(f"{anomaly.handle} 的包裹已签收，快递无法拦截")
    refund = await tx.cases.get(seen.refund.pk) if seen.refund is not None else None
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
    # Read again: the request may have shown the intercept on the anomaly already.
    data = AnomalyData.of(anomaly)
    data.intercept = shown_on_links(case)
    await logistics.move_anomaly(
        tx,
        anomaly,
        anomaly_machine.AT.INTERCEPT,
        actor=staff.id,
        channel=channel,
        data=data,
        assignee=anomaly.assignee or staff.id,
    )
    verb = "已申请拦截" if new else "已在拦截"
    return Reply(f"🚚 {anomaly.handle}：{verb} {parcel_text(carrier, number)}（{case.handle}）")


async def _again(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    state = InterceptState(case.state)
    data = InterceptData.of(case)
    if state is S.ERROR:
        attempt = data.attempt + 1
        await tx.timers.cancel(case.id, ["intercept_feedback"])
        data.attempt, data.error, data.requested_by = attempt, "", staff.id
        await move(tx, case, T.RETRY, actor=staff.id, channel=channel, data=data)
        return Reply(f"🔁 已重新提交拦截 {case.handle}（第 {attempt} 次）")
    if state is S.FAILED:
        detail = data.result.detail if data.result is not None else ""
        raise ConflictError(
            f"{case.handle} 已拦截失败{f'（{detail}）' if detail else ''}：退款按退货流程处理"
        )
    return Reply(f"{case.handle}：{STATE_TEXT[state]}（{footer(case, tx.view)}）")


async def resolve(tx: Tx, ref_case: Case) -> Case:
    """The intercept behind a handle: X3 itself, or the one shown on a refund or anomaly."""
    if ref_case.kind == CaseKind.INTERCEPT:
        return ref_case
    handle = _shown_handle(ref_case)
    if handle is not None and (case := await tx.cases.by_handle(handle)):
        return case
    raise UsageError(f"{ref_case.handle} 没有拦截单：请用拦截单号（如 X3）")


def _shown_handle(case: Case) -> str | None:
    """The handle of the intercept shown on a refund's or an anomaly's card."""
    if case.kind == CaseKind.REFUND:
        shown = RefundData.of(case).intercept
    elif case.kind == CaseKind.ANOMALY:
        shown = AnomalyData.of(case).intercept
    else:
        return None
    return shown.handle if shown is not None else None


async def confirm(
    tx: Tx, ref_case: Case, staff: StaffSettings, *, ok: bool, detail: str, channel: str
) -> Reply:
    """A person records the carrier's answer (given by phone or in the carrier's system)."""
    case = await resolve(tx, ref_case)
    trigger = T.INTERCEPTED if ok else T.FAIL
    if (InterceptState(case.state), trigger) not in TRANSITIONS:
        raise ConflictError(
            f"{case.handle} 已经是「{STATE_TEXT[InterceptState(case.state)]}」（{footer(case, tx.view)}）"
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
        for link in InterceptData.of(case).refunds
        if (refund := await tx.cases.get(link.pk)) is not None and held_for(refund, case.handle)
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

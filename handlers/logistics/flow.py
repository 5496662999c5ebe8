"""The anomaly case: raised once per parcel and problem (a recurrence updates its card, never
posts another), recovered by a newer scan, decided by people: contact, reship, ignore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.config import LogisticsSettings, StaffSettings
from handlers.context import Tx
from handlers.errors import UsageError
from handlers.logistics.card import anomaly_footer
from handlers.logistics.carriers import (
    TRACKING_TEXT,
    carrier_hotline,
    carrier_name,
    parcel_key,
    parcel_text,
)
from handlers.logistics.data import AnomalyData, Recovery, RefundLink, Scan
from handlers.logistics.machine import (
    ACTIVE,
    ANOMALY,
    AT,
    CLOSED,
    KIND_TEXT,
    ORDER,
    A,
    Anomaly,
    AnomalyState,
    AnomalyTrigger,
)
from handlers.message import Reply, one_line
from handlers.step import step
from storage.enums import CaseKind
from storage.models import Case, Parcel


async def move_anomaly(
    tx: Tx,
    case: Case,
    trigger: AnomalyTrigger,
    *,
    actor: str,
    channel: str = "",
    data: AnomalyData | None = None,
    **changes: Any,
) -> AnomalyState:
    return await step(
        tx,
        case,
        ANOMALY,
        trigger,
        actor=actor,
        closed=CLOSED,
        footer=anomaly_footer(case, tx.view),
        channel=channel,
        data=data,
        **changes,
    )


def anomaly_case_id(carrier: str, tracking_no: str, kind: Anomaly) -> str:
    return f"{parcel_key(carrier, tracking_no)}:{kind.value}"


async def anomaly_of(tx: Tx, parcel: Parcel, kind: Anomaly) -> Case | None:
    pk = parcel.anomalies.get(kind.value)
    if isinstance(pk, int) and (case := await tx.cases.get(pk)) is not None:
        return case
    return await tx.cases.by_case_id(
        CaseKind.ANOMALY, anomaly_case_id(parcel.carrier, parcel.tracking_no, kind)
    )


def _detail(kind: Anomaly, parcel: Parcel, now: datetime, settings: LogisticsSettings) -> str:
    hours = int((now - parcel.last_event_at).total_seconds() // 3600)
    if kind is Anomaly.NO_PICKUP:
        since = parcel.shipped_at or parcel.last_event_at
        waited = int((now - since).total_seconds() // 3600)
        return f"发货 {waited} 小时仍未揽收（时限 {settings.no_pickup_h:g} 小时）"
    if kind is Anomaly.NO_UPDATE:
        return f"揽收后 {hours} 小时没有物流更新（时限 {settings.no_update_after_pickup_h:g} 小时）"
    if kind is Anomaly.STUCK:
        status = TRACKING_TEXT.get(parcel.status, parcel.status)
        return f"{status} {hours} 小时没有物流更新（时限 {settings.stuck_in_transit_h:g} 小时）"
    if kind is Anomaly.LOST:
        days = (now - parcel.last_event_at).total_seconds() / 86400
        return f"{days:.1f} 天没有任何走件（超过 {settings.lost_days:g} 天按丢件处理）"
    return parcel.description or KIND_TEXT[kind]


def _seen(data: AnomalyData, kind: Anomaly, parcel: Parcel, tx: Tx) -> AnomalyData:
    """`data` with what the parcel shows now: its status, the problem, its newest scan."""
    data.status = parcel.status
    data.detail = _detail(kind, parcel, tx.now, tx.svc.settings.logistics)
    data.scan = Scan(at=parcel.last_event_at, description=parcel.description)
    data.seen_at = tx.now
    return data


async def raise_anomaly(tx: Tx, parcel: Parcel, kind: Anomaly) -> Case:
    """Open (or update) the anomaly case of this parcel and problem; never a second card."""
    case = await anomaly_of(tx, parcel, kind)
    if case is None:
        return await _open(tx, parcel, kind)
    data = _seen(AnomalyData.of(case), kind, parcel, tx)
    data.count += 1
    if case.state == A.RECOVERED:
        await move_anomaly(tx, case, AT.REOPEN, actor="system", data=data)
    else:
        await tx.cases.touch(
            case, now=tx.now, data=data.dump(), last_actor="system", last_action="recurred"
        )
        await tx.audit(case, "system", "recurred", from_state=case.state, anomaly=kind.value)
        await tx.sync_card(case)
    return case


async def _open(tx: Tx, parcel: Parcel, kind: Anomaly) -> Case:
    refund = await tx.cases.latest_for_order(CaseKind.REFUND, parcel.order_id)
    group = tx.svc.route(shop=parcel.shop, platform=parcel.platform, kind="anomaly")
    data = AnomalyData(
        anomaly=kind, carrier=parcel.carrier, tracking_no=parcel.tracking_no, count=1
    )
    data = _seen(data, kind, parcel, tx)
    if refund is not None:
        data.refund = RefundLink(pk=refund.id, handle=refund.handle)
    case = await tx.cases.create(
        kind=CaseKind.ANOMALY,
        case_id=anomaly_case_id(parcel.carrier, parcel.tracking_no, kind),
        state=A.OPEN.value,
        now=tx.now,
        shop=parcel.shop,
        platform=parcel.platform,
        order_id=parcel.order_id,
        amount_fen=refund.amount_fen if refund else 0,
        group_id=group.id if group else "",
        # "<kind>@<carrier>" lets digests count by kind and carrier in SQL.
        reason=f"{kind.value}@{parcel.carrier}"[:255],
        data=data.dump(),
        last_actor="system",
        last_action="raised",
    )
    parcel.anomalies = {**parcel.anomalies, kind.value: case.id}
    await tx.audit(case, "system", "raised", anomaly=kind.value)
    if group is None:
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 物流异常 {case.handle}（{parcel_text(parcel.carrier, parcel.tracking_no)}）"
            "没有匹配的群，请检查 [[groups]] 的路由配置",
            key=f"unrouted:{case.id}",
            case=case,
        )
    await tx.sync_card(case)
    return case


async def recover(tx: Tx, parcel: Parcel, kinds: frozenset[Anomaly]) -> None:
    """A newer scan: the parcel's open anomalies of these kinds are over."""
    for kind in sorted(kinds, key=ORDER.index):
        if kind.value not in parcel.anomalies:
            continue
        case = await anomaly_of(tx, parcel, kind)
        if case is None or case.state not in ACTIVE:
            continue
        data = AnomalyData.of(case)
        data.recovered = Recovery(
            at=parcel.last_event_at, status=parcel.status, description=parcel.description
        )
        await move_anomaly(tx, case, AT.RECOVER, actor="carrier", data=data)


# -- people ---------------------------------------------------------------------------------


def require_anomaly(case: Case, what: str) -> None:
    if case.kind != CaseKind.ANOMALY:
        raise UsageError(f"{case.handle} 不是物流异常单，{what}请用异常单号（如 A3）")


async def contact_carrier(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    require_anomaly(case, "联系快递")
    await move_anomaly(tx, case, AT.CONTACT, actor=staff.id, channel=channel, assignee=staff.id)
    data = AnomalyData.of(case)
    hotline = carrier_hotline(data.carrier)
    call = f"（客服 {hotline}）" if hotline else ""
    return Reply(
        f"📞 {case.handle} 由 {staff.display} 联系{carrier_name(data.carrier)}{call}，"
        f"核实 {data.tracking_no} 的去向后请在卡片上选择拦截、补发或忽略"
    )


async def reship(tx: Tx, case: Case, staff: StaffSettings, channel: str) -> Reply:
    require_anomaly(case, "补发")
    await move_anomaly(
        tx, case, AT.RESHIP, actor=staff.id, channel=channel, assignee=case.assignee or staff.id
    )
    return Reply(f"📦 {case.handle} 已记为补发（{staff.display}），请在 ERP 安排补发")


async def ignore(tx: Tx, case: Case, staff: StaffSettings, reason: str, channel: str) -> Reply:
    require_anomaly(case, "忽略")
    data = None
    if reason.strip():
        data = AnomalyData.of(case)
        data.ignore_reason = reason.strip()[:200]
    await move_anomaly(
        tx,
        case,
        AT.IGNORE,
        actor=staff.id,
        channel=channel,
        data=data,
        assignee=case.assignee or staff.id,
    )
    return Reply(
        f"已忽略 {case.handle}" + (f"：{one_line(reason.strip())}" if reason.strip() else "")
    )

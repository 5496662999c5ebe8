"""Asking a carrier to intercept a parcel: where a refund's goods are, one intercept case per
parcel (linked to every refund and anomaly it serves), the call through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from handlers.context import Tx
from handlers.intercept.data import InterceptData, link_of, refund_link_of
from handlers.intercept.machine import SOURCE_TEXT, S
from handlers.intercept.move import send, show_on_links
from handlers.logistics.carriers import parcel_key, parcel_text
from handlers.refund.data import RefundData
from handlers.refund.parcel import request_stop_shipment
from handlers.response import is_response
from storage.enums import CaseKind
from storage.models import Case


@dataclass(frozen=True)
class Whereabouts:
    """Where a refund's goods are, as far as we know."""

    kind: Literal["parcel", "unshipped", "delivered", "unknown"]
    carrier: str = ""
    tracking_no: str = ""
    at: datetime | None = None


async def locate(tx: Tx, refund: Case) -> Whereabouts:
    """The refund's parcel: tracking we hold wins over the shipping status on the refund."""
    shipping = RefundData.of(refund).refund.shipping
    carrier, number = shipping.carrier, shipping.tracking_no
    status = shipping.status or "unshipped"
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
        data=InterceptData(
            carrier=carrier,
            tracking_no=tracking_no,
            source=source,
            requested_by=actor,
            attempt=1,
            refunds=[refund_link_of(refund)] if refund else [],
            anomalies=[link_of(anomaly)] if anomaly else [],
        ).dump(),
        last_actor=actor,
        last_action="requested",
        first_response_at=tx.now if is_response(actor, "intercept") else None,
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
    await send(tx, case)
    await show_on_links(tx, case, actor=actor)
    return case, True


async def _link(
    tx: Tx, case: Case, refund: Case | None, anomaly: Case | None, *, actor: str
) -> None:
    """Attach another refund or anomaly to an existing intercept; a settled one settles it too."""
    data = InterceptData.of(case)
    refunds, anomalies = list(data.refunds), list(data.anomalies)
    amount = case.amount_fen
    if refund is not None and all(r.pk != refund.id for r in refunds):
        refunds.append(refund_link_of(refund))
        amount += refund.amount_fen
    if anomaly is not None and all(a.pk != anomaly.id for a in anomalies):
        anomalies.append(link_of(anomaly))
    if (len(refunds), len(anomalies)) == (len(data.refunds), len(data.anomalies)):
        return
    data.refunds, data.anomalies = refunds, anomalies
    await tx.cases.touch(case, now=tx.now, data=data.dump(), amount_fen=amount)
    await tx.audit(case, actor, "linked", from_state=case.state)
    await tx.sync_card(case)
    await show_on_links(tx, case, actor=actor)


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
        await request_stop_shipment(tx, refund, actor=actor)
        return
    text = (
        f"⚠ {refund.handle} 的包裹轨迹显示已签收（{parcel_text(where.carrier, where.tracking_no)}），"
        "无法拦截：请按已收货处理"
        if where.kind == "delivered"
        else f"⚠ {refund.handle} 显示已发货但没有运单号，无法自动拦截：补充运单号后输入「拦截 {refund.handle}」"
    )
    await tx.post(refund.group_id, text, key=f"intercept-unavailable:{refund.id}", case=refund)

"""How an intercept moves: one step, the carrier call arriving in `requested` means, and the
intercept shown on (and moving on) the refunds and anomalies it serves.
"""

from __future__ import annotations

from handlers.context import Tx
from handlers.intercept.card import footer
from handlers.intercept.data import InterceptData, recorded_by, shown_on_links
from handlers.intercept.machine import DONE, MACHINE, InterceptState, InterceptTrigger, S
from handlers.logistics import flow as logistics
from handlers.logistics import machine as anomaly_machine
from handlers.logistics.data import AnomalyData
from handlers.refund.data import RefundData
from handlers.refund.machine import RefundState
from handlers.refund.machine import Trigger as RefundTrigger
from handlers.refund.move import move as move_refund
from handlers.refund.parcel import on_intercepted
from handlers.step import step
from storage.models import Case


async def move(
    tx: Tx,
    case: Case,
    trigger: InterceptTrigger,
    *,
    actor: str,
    channel: str = "",
    data: InterceptData | None = None,
) -> InterceptState:
    """Advance `case` with compare-and-set; audit, card, and what arriving in the state means."""
    after = await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=DONE,
        footer=footer(case, tx.view),
        channel=channel,
        data=data,
    )
    if after in DONE:
        await tx.timers.cancel(case.id)
    elif after is S.REQUESTED:
        await send(tx, case)
    await show_on_links(tx, case, actor=actor)
    return after


async def send(tx: Tx, case: Case) -> None:
    """Queue the carrier call (its id is the idempotency key) and start the feedback clock."""
    data = InterceptData.of(case)
    attempt = data.attempt
    payload = {
        "carrier": data.carrier,
        "tracking_no": data.tracking_no,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "refund_ids": [r.case_id for r in data.refunds],
        "reason": "买家申请退款，拦截退回" if data.refunds else "物流异常，拦截退回",
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


async def show_on_links(tx: Tx, case: Case, *, actor: str) -> None:
    """Reflect the intercept on its refunds' and anomalies' cards; a settled one moves them on."""
    state = InterceptState(case.state)
    shown = shown_on_links(case)
    data = InterceptData.of(case)
    for link in data.refunds:
        refund = await tx.cases.get(link.pk)
        if refund is None:
            continue
        refund_data = RefundData.of(refund)
        if refund_data.intercept is not None and refund_data.intercept.dump() == shown.dump():
            continue
        refund_data.intercept = shown
        waiting = refund.state == RefundState.WAITING_INTERCEPT
        if state is S.INTERCEPTED and waiting:
            await on_intercepted(
                tx,
                refund,
                recorded_by=recorded_by(case),
                via=case.handle,
                actor=actor,
                data=refund_data,
            )
        elif state is S.FAILED and waiting:
            trigger = RefundTrigger.INTERCEPT_FAILED
            await move_refund(tx, refund, trigger, actor=actor, data=refund_data)
        else:
            await tx.cases.touch(refund, now=tx.now, data=refund_data.dump())
            await tx.sync_card(refund)
    for served in data.anomalies:
        anomaly = await tx.cases.get(served.pk)
        if anomaly is None:
            continue
        anomaly_data = AnomalyData.of(anomaly)
        if anomaly_data.intercept is not None and anomaly_data.intercept.dump() == shown.dump():
            continue
        anomaly_data.intercept = shown
        if state is S.FAILED and anomaly.state == anomaly_machine.A.INTERCEPTING:
            await logistics.move_anomaly(
                tx, anomaly, anomaly_machine.AT.REOPEN, actor=actor, data=anomaly_data
            )
        else:
            await tx.cases.touch(anomaly, now=tx.now, data=anomaly_data.dump())
            await tx.sync_card(anomaly)

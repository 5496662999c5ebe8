"""What the parcel's fate means for a refund: stopped at the warehouse (截单), intercepted on
the carrier's or a person's word, or confirmed by the carrier after a person recorded it.
"""

from __future__ import annotations

from handlers.context import Tx
from handlers.ports import MANUAL
from handlers.refund.data import Escalation, RefundData, approval_role
from handlers.refund.machine import S, T
from handlers.refund.move import commerce_payload, move
from storage.models import Case


async def on_intercepted(
    tx: Tx, case: Case, *, recorded_by: str, via: str, actor: str, data: RefundData
) -> None:
    """The parcel of a refund waiting for its intercept was stopped (intercept `via`).

    On the carrier's word (its API or a signed `intercept.result`) the refund goes on, as the
    rule says. On a person's word it goes on only within that person's refund limit; above
    it, it is escalated and waits for someone who may approve the amount.
    """
    directory = tx.svc.staff
    staff = directory.get(recorded_by)
    if recorded_by == "carrier" or (
        staff is not None and directory.may_approve(staff, case.amount_fen, approval_role(case))
    ):
        await move(tx, case, T.INTERCEPTED, actor=actor, data=data)
        return
    data.escalation = Escalation(
        by=recorded_by, limit=directory.limit_text(staff), at=tx.now.isoformat(), intercept=via
    )
    await move(tx, case, T.ESCALATE, actor=actor, data=data)


def held_for(case: Case, via: str) -> bool:
    """The refund waits for an approver only because a person recorded intercept `via`."""
    escalation = RefundData.of(case).escalation
    return case.state == S.ESCALATED and escalation is not None and escalation.intercept == via


async def on_carrier_confirmed(tx: Tx, case: Case, *, via: str) -> None:
    """The carrier confirmed intercept `via`, which a person had recorded first: a refund
    held for that person's limit goes on, on the carrier's word."""
    if held_for(case, via):
        await move(tx, case, T.APPROVE, actor="carrier")


async def request_stop_shipment(tx: Tx, case: Case, *, actor: str, channel: str = "") -> bool:
    """Tell the warehouse/ERP to stop an unshipped order (截单); False when already under way."""
    data = RefundData.of(case)
    if data.stop_shipment in ("requested", "pending", MANUAL, "done"):
        return False
    data.stop_shipment = "requested"
    data.stop_attempt += 1
    attempt = data.stop_attempt
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.audit(case, actor, "stop_shipment", from_state=case.state, channel=channel)
    await tx.sync_card(case)
    await tx.side_effect(case, "commerce.stop_shipment", commerce_payload(case), attempt=attempt)
    return True

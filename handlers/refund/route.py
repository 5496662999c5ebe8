"""Which path a refund takes: the rules' decision, the intercept, return or 截单 it waits for."""

from __future__ import annotations

from handlers.context import Tx
from handlers.intercept.request import request_for_refund
from handlers.refund.data import WAITING_FOR_STOP, RefundData
from handlers.refund.hold import on_stop_answer, waits_for_stop
from handlers.refund.machine import T
from handlers.refund.move import arm_timers, move
from handlers.refund.parcel import request_stop_shipment
from handlers.rules import Action, Decision
from storage.models import Case


async def apply_decision(tx: Tx, case: Case, decision: Decision, *, again: bool = False) -> None:
    """Route a new case by the rules' decision; `again` for one whose decision was withdrawn,
    where the intercept or return it waited for has already happened: a person reviews it."""
    actor = f"rule:{decision.rule}"
    route = decision.route
    data = RefundData.of(case)
    data.rule, data.review_role = decision.rule, decision.review_role
    waits = route is Action.AUTO_APPROVE and waits_for_stop(tx, case, decision)
    if waits or data.stop_wait == WAITING_FOR_STOP:
        data.stop_wait = WAITING_FOR_STOP if waits else ""
    if route is Action.AUTO_APPROVE:
        await move(tx, case, T.AUTO_APPROVE, actor=actor, data=data)
    elif route is Action.REQUEST_INTERCEPT and not again:
        await move(tx, case, T.INTERCEPT, actor=actor, data=data)
        await request_for_refund(tx, case)
    elif route is Action.AWAIT_RETURN and not again:
        await move(tx, case, T.AWAIT_RETURN, actor=actor, data=data)
    else:
        await move(tx, case, T.REVIEW, actor=actor, data=data)
    if Action.STOP_SHIPMENT in decision.actions:
        await request_stop_shipment(tx, case, actor=actor)
    await arm_timers(tx, case)
    if waits:
        # A stop asked before (an approval withdrawn and made again) may have its answer.
        await on_stop_answer(tx, case)

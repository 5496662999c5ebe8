"""Which path a refund takes: the rules' decision, the intercept or return it waits for, and
the reminders of the platform's deadline.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.context import Tx
from handlers.intercept.request import request_for_refund
from handlers.refund.data import RefundData
from handlers.refund.machine import NEEDS_PERSON, S, T
from handlers.refund.move import move
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


async def arm_timers(tx: Tx, case: Case) -> None:
    timers = tx.svc.settings.timers
    if case.first_response_at is None and case.state in NEEDS_PERSON:
        await tx.schedule(case, "first_response", tx.after(minutes=timers.first_response_min))
    if case.deadline_at is not None and case.state in NEEDS_PERSON | {S.WAITING_INTERCEPT}:
        # One warning per window, plus one when the deadline passes; a case that arrives
        # already inside windows gets only the most urgent of them, at once.
        windows = sorted({*timers.deadline_warn_h, 0.0}, reverse=True)
        entered = [h for h in windows if case.deadline_at - timedelta(hours=h) <= tx.now]
        for hours in windows:
            if entered and hours in entered and hours != entered[-1]:
                continue
            await tx.schedule(
                case,
                "deadline_warn",
                max(case.deadline_at - timedelta(hours=hours), tx.now),
                suffix=f"{hours:g}h:{case.deadline_at:%Y%m%d%H%M}",
                hours=hours,
            )

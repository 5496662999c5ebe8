"""How a refund moves: one step, and what arriving in a state means (the shop system's call,
the timers). Asking a carrier to intercept is the caller's part: the intercept flow builds on
this module.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers.context import Tx, effect_key
from handlers.money import fen_to_yuan
from handlers.refund.card import footer
from handlers.refund.data import WAITING_FOR_STOP, Approved, Decision, RefundData, standing_fen
from handlers.refund.machine import (
    APPROVING,
    DECISIONS,
    FINAL_DECISIONS,
    MACHINE,
    NEEDS_PERSON,
    TERMINAL,
    TIMER_STATES,
    RefundState,
    S,
    Trigger,
    advance,
)
from handlers.step import step
from storage.models import Case

APPROVE_REFUND = "commerce.approve_refund"


def ensure(tx: Tx, case: Case, trigger: Trigger) -> RefundState:
    """Like `advance`, but the refusal says who moved the case and when."""
    return MACHINE.ensure(case.handle, case.state, trigger, footer(case, tx.view))


async def move(
    tx: Tx,
    case: Case,
    trigger: Trigger,
    *,
    actor: str,
    channel: str = "",
    data: RefundData | None = None,
    **changes: Any,
) -> RefundState:
    """Advance `case` by `trigger` with compare-and-set, and write audit, card and effects."""
    after = advance(case.state, trigger)
    values: dict[str, Any] = dict(changes)
    if trigger in DECISIONS or after in APPROVING:
        data = data if data is not None else RefundData.of(case)
        if trigger in DECISIONS:
            data.decision = Decision(by=actor, action=trigger.value, at=tx.now.isoformat())
        # Decided: by a person or a rule, or released by the carrier's answer to an intercept.
        if (trigger in FINAL_DECISIONS or after in APPROVING) and case.decided_at is None:
            values |= {"decided_at": tx.now, "decided_by": actor}
        if after in APPROVING:
            # What the ERP is sent is this, not the requested amount (which may change later).
            data.approved = Approved(
                amount_fen=changes.get("amount_fen", case.amount_fen),
                by=actor,
                at=tx.now.isoformat(),
                key=effect_key(case, APPROVE_REFUND, data.commerce.attempt),
            )
    await step(
        tx,
        case,
        MACHINE,
        trigger,
        actor=actor,
        closed=TERMINAL,
        channel=channel,
        data=data,
        **values,
    )
    await _enter(tx, case, after)
    return after


async def _enter(tx: Tx, case: Case, state: RefundState) -> None:
    """Side effects and timers that belong to arriving in `state`."""
    if case.first_response_at is not None:
        await tx.timers.cancel(case.id, ["first_response"])
    if state in APPROVING:
        data = RefundData.of(case)
        # An automatic refund that waits for 截单 is sent once the warehouse stopped the order.
        if data.stop_wait != WAITING_FOR_STOP:
            attempt = data.commerce.attempt
            await tx.side_effect(case, APPROVE_REFUND, approve_payload(case), attempt=attempt)
    elif state is S.REJECTED:
        data = RefundData.of(case)
        payload = commerce_payload(case) | {"reason": data.reject_reason}
        if data.reject_code:
            payload["reason_code"] = data.reject_code
        await tx.side_effect(case, "commerce.reject_refund", payload)
    if state in TERMINAL:
        await tx.timers.cancel(case.id)
        return
    await tx.timers.cancel(
        case.id, [k for k, states in TIMER_STATES.items() if state not in states]
    )
    waits = tx.svc.settings.timers
    if state is S.ESCALATED:
        await tx.schedule(
            case, "approval", tx.after(hours=waits.approval_h), suffix=str(case.version)
        )
    elif state is S.WAITING_RETURN:
        await tx.schedule(case, "return_tracking", tx.after(hours=waits.return_tracking_h))
    elif state is S.INSPECTING:
        await tx.schedule(case, "qc", tx.after(hours=waits.qc_h))


def unsendable_approval(case: Case, key: str) -> str:
    """Why the `approve_refund` item `key` must not reach the shop now ('' when it may).

    Only the current attempt of a refund that is approved and not yet submitted is sent: an
    old attempt brought back from the dead letters never pays a failed refund (that needs a
    person's retry, within their limit) nor pays one twice.
    """
    state = RefundState(case.state)
    if state not in (S.APPROVED, S.AUTO_APPROVED):
        return f"{case.handle} is {state.value}"
    attempt = RefundData.of(case).commerce.attempt
    if key != effect_key(case, APPROVE_REFUND, attempt):
        return f"{case.handle} is on attempt {attempt}"
    return ""


def commerce_payload(case: Case) -> dict[str, Any]:
    return {
        "refund_id": case.case_id,
        "order_id": case.order_id,
        "shop": case.shop,
        "platform": case.platform,
        "amount": str(fen_to_yuan(case.amount_fen)),
    }


def approve_payload(case: Case) -> dict[str, Any]:
    return commerce_payload(case) | {"amount": str(fen_to_yuan(standing_fen(case)))}


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

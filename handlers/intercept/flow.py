"""An intercept's answers and follow-up: the carrier's synchronous answer, its final word (an
`intercept.result`, perhaps late), a request that never reached it, and the feedback timer.
"""

from __future__ import annotations

import logging

from handlers.context import Tx
from handlers.intercept.card import supervisors
from handlers.intercept.data import AnswerRecord, CarrierWord, InterceptData, Result, recorded_by
from handlers.intercept.machine import DONE, OPEN, STATE_TEXT, TRANSITIONS, InterceptState, S, T
from handlers.intercept.move import move
from handlers.logistics.carriers import carrier_hotline, carrier_name, parcel_key, parcel_text
from handlers.message import Mention
from handlers.ports import CarrierAnswer
from handlers.refund.parcel import on_carrier_confirmed
from handlers.schema import InterceptResult
from storage.enums import CaseKind
from storage.models import Case, Timer

log = logging.getLogger(__name__)


async def decide(
    tx: Tx,
    case: Case,
    *,
    ok: bool,
    actor: str,
    detail: str = "",
    result: str = "",
    channel: str = "",
    data: InterceptData | None = None,
) -> None:
    outcome = "intercepted" if ok else "failed"
    data = data if data is not None else InterceptData.of(case)
    data.outcome = outcome
    data.result = Result(result=result or outcome, detail=detail, by=actor, at=tx.now.isoformat())
    await move(tx, case, T.INTERCEPTED if ok else T.FAIL, actor=actor, channel=channel, data=data)


async def on_carrier_answer(tx: Tx, case: Case, answer: CarrierAnswer) -> None:
    """The carrier's synchronous answer to our request."""
    state = InterceptState(case.state)
    if state in DONE:
        return
    data = InterceptData.of(case)
    data.carrier_answer = AnswerRecord(
        status=answer.status, detail=answer.detail, at=tx.now.isoformat()
    )
    data.error = ""
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
    data = InterceptData.of(case)
    data.error = error[:300]
    await move(tx, case, T.ERROR, actor="system", data=data)


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
        elif ((data := InterceptData.of(case)).outcome == "intercepted") != ok:
            word = CarrierWord(result=result.result, detail=result.detail, at=tx.now.isoformat())
            late = [*data.late_results, word]
            data.late_results = late[-5:]
            await tx.cases.touch(case, now=tx.now, data=data.dump())
            await tx.audit(
                case, "carrier", "late_result", from_state=case.state, result=result.result
            )
            await tx.sync_card(case)
            await tx.post(
                case.group_id,
                f"⚠ 拦截 {case.handle}：快递反馈「{'拦截成功' if ok else '拦截失败'}」，"
                f"与已登记的「{STATE_TEXT[InterceptState(case.state)]}」不一致，请核实",
                key=f"late:{case.id}:{len(late)}",
                mentions=supervisors(case, tx.view),
                case=case,
            )
        return case
    await decide(tx, case, ok=ok, actor="carrier", detail=result.detail, result=result.result)
    return case


async def _carrier_confirms(tx: Tx, case: Case, result: InterceptResult) -> None:
    """The carrier agrees with what a person recorded: refunds held for that person's limit
    go on, on the carrier's word."""
    data = InterceptData.of(case)
    data.carrier_confirmed = CarrierWord(
        result=result.result, detail=result.detail, at=tx.now.isoformat()
    )
    await tx.cases.touch(
        case,
        now=tx.now,
        data=data.dump(),
        last_actor="carrier",
        last_action="carrier_confirmed",
    )
    await tx.audit(case, "carrier", "carrier_confirmed", from_state=case.state)
    await tx.sync_card(case)
    for link in data.refunds:
        refund = await tx.cases.get(link.pk)
        if refund is not None:
            await on_carrier_confirmed(tx, refund, via=case.handle)


def _owners(tx: Tx, case: Case) -> tuple[Mention, ...]:
    return tx.svc.staff.to_mention(InterceptData.of(case).requested_by, roles=["agent"])


async def on_feedback_timer(tx: Tx, case: Case, timer: Timer) -> None:
    """No carrier answer yet: remind, then escalate to the supervisors."""
    attempt = int(timer.payload.get("attempt", 1))
    data = InterceptData.of(case)
    if case.state not in OPEN or attempt != data.attempt:
        return
    hours = tx.svc.settings.timers.intercept_feedback_h
    carrier = data.carrier
    what = f"拦截 {case.handle}（{parcel_text(carrier, data.tracking_no)}）"
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
        mentions=supervisors(case, tx.view),
        case=case,
    )

"""Due timers: reminders first, then escalation to supervisors, each firing exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.message import Mention
from handlers import intercept, logistics
from handlers.context import Tx
from handlers.money import format_fen
from handlers.refund import NEEDS_PERSON, OPEN, S
from storage.models import Case, Timer

TimerRunner = Callable[[Tx, Case, Timer], Awaitable[None]]
JobRunner = Callable[[Tx, Timer], Awaitable[None]]


def owners(tx: Tx, case: Case) -> tuple[Mention, ...]:
    """Who should act now: the assignee, else everyone allowed to decide the amount."""
    directory = tx.svc.staff
    if case.assignee and (staff := directory.get(case.assignee)):
        return (directory.mention(staff),)
    role = "supervisor" if case.state == S.ESCALATED else case.data.get("review_role", "agent")
    return directory.mentions(directory.approvers(case.amount_fen, role))


def supervisors(tx: Tx, case: Case) -> tuple[Mention, ...]:
    directory = tx.svc.staff
    return directory.mentions(directory.approvers(case.amount_fen, "supervisor"))


async def _first_response(tx: Tx, case: Case, timer: Timer) -> None:
    if case.first_response_at is not None or case.state not in OPEN:
        return
    minutes = tx.svc.settings.timers.first_response_min
    stage = int(timer.payload.get("stage", 1))
    if stage == 1:
        await tx.post(
            case.group_id,
            f"⏰ {case.handle}（{format_fen(case.amount_fen)}）{minutes} 分钟无人响应，请尽快处理",
            key=timer.id,
            mentions=owners(tx, case),
            case=case,
        )
        await tx.schedule(case, "first_response", tx.after(minutes=minutes), suffix="2", stage=2)
    else:
        await tx.post(
            case.group_id,
            f"🔺 {case.handle} 已 {minutes * 2} 分钟无人响应，升级主管跟进",
            key=timer.id,
            mentions=supervisors(tx, case),
            case=case,
        )


async def _deadline_warn(tx: Tx, case: Case, timer: Timer) -> None:
    if case.state not in NEEDS_PERSON | {S.WAITING_INTERCEPT} or case.deadline_at is None:
        return
    left = case.deadline_at - tx.now
    if left.total_seconds() <= 0:
        text = f"⛔ {case.handle} 已过平台处理时限，平台可能已自动退款，请立即核对"
    else:
        hours = left.total_seconds() / 3600
        span = f"{hours:.0f} 小时" if hours >= 1 else f"{int(left.total_seconds() // 60)} 分钟"
        text = (
            f"⏳ {case.handle}（{format_fen(case.amount_fen)}）距平台自动同意还剩 {span}"
            f"（{tx.local(case.deadline_at):%m-%d %H:%M}），请尽快处理"
        )
    last = float(timer.payload.get("hours", 0)) <= min(
        tx.svc.settings.timers.deadline_warn_h, default=0
    )
    mentions = owners(tx, case) + (supervisors(tx, case) if last else ())
    await tx.post(case.group_id, text, key=timer.id, mentions=_unique(mentions), case=case)


async def _approval(tx: Tx, case: Case, timer: Timer) -> None:
    if case.state != S.ESCALATED:
        return
    hours = tx.svc.settings.timers.approval_h
    await tx.post(
        case.group_id,
        f"🔺 {case.handle}（{format_fen(case.amount_fen)}）等待主管审批已超过 {hours:g} 小时",
        key=timer.id,
        mentions=supervisors(tx, case),
        case=case,
    )


RUNNERS: dict[str, TimerRunner] = {
    "first_response": _first_response,
    "deadline_warn": _deadline_warn,
    "approval": _approval,
    "intercept_feedback": intercept.on_feedback_timer,
}
# Timers that belong to no case (periodic jobs that re-arm themselves).
JOBS: dict[str, JobRunner] = {"logistics_scan": logistics.run_scan}


async def fire(tx: Tx, timer: Timer) -> None:
    """Run a due timer inside the transaction that marks it fired."""
    if (job := JOBS.get(timer.kind)) is not None:
        await job(tx, timer)
        return
    runner = RUNNERS.get(timer.kind)
    case = await tx.cases.get(timer.case_pk) if timer.case_pk is not None else None
    if runner is None or case is None:
        return
    await runner(tx, case, timer)


def _unique(mentions: tuple[Mention, ...]) -> tuple[Mention, ...]:
    return tuple(dict.fromkeys(mentions))

"""Due timers: a reminder to whoever should act, then escalation to supervisors; each fires once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from handlers import digest
from handlers.config import TimerSettings
from handlers.context import Tx
from handlers.escalation import fresh, mention_once
from handlers.intercept import flow as intercept
from handlers.logistics import watch
from handlers.message import Mention
from handlers.money import format_fen
from handlers.refund.data import RefundData, approval_role
from handlers.refund.machine import NEEDS_PERSON, OPEN, TIMER_STATES, S
from storage.models import Case, Timer

TimerRunner = Callable[[Tx, Case, Timer], Awaitable[None]]
JobRunner = Callable[[Tx, Timer], Awaitable[None]]


def owners(tx: Tx, case: Case) -> tuple[Mention, ...]:
    """Who should act now: the assignee, else everyone allowed to decide the amount."""
    return tx.svc.staff.to_mention(case.assignee, approving=(case.amount_fen, approval_role(case)))


def supervisors(tx: Tx, case: Case) -> tuple[Mention, ...]:
    return tx.svc.staff.to_mention(approving=(case.amount_fen, "supervisor"))


def admins(tx: Tx, _case: Case) -> tuple[Mention, ...]:
    return tx.svc.staff.to_mention(roles=["admin"])


async def called(tx: Tx, case: Case, kind: str, people: tuple[Mention, ...]) -> tuple[Mention, ...]:
    """Whom a reminder of `kind` @-mentions: the case's assignee every time (it is theirs to
    do), anyone else only the first time this case reminds them of it."""
    own = tuple(m for m in people if m.staff_id == case.assignee)
    others = tuple(m for m in people if m.staff_id != case.assignee)
    return own + await mention_once(tx, case, kind, others)


@dataclass(frozen=True)
class Reminder:
    """Stage 1 reminds `first` people; if still pending after `every`, stage 2 tells `then`."""

    pending: Callable[[Case], bool]
    every: Callable[[TimerSettings], timedelta]
    remind: str
    escalate: str
    first: Callable[[Tx, Case], tuple[Mention, ...]] = owners
    then: Callable[[Tx, Case], tuple[Mention, ...]] = supervisors

    async def __call__(self, tx: Tx, case: Case, timer: Timer) -> None:
        if not self.pending(case):
            return
        stage = int(timer.payload.get("stage", 1))
        every = self.every(tx.svc.settings.timers)
        values = {
            "handle": case.handle,
            "amount": format_fen(case.amount_fen),
            "span": span(every * stage),
        }
        if stage == 1:
            text = self.remind.format(**values)
            mentions = await called(tx, case, timer.kind, self.first(tx, case))
            base = timer.id.removeprefix(f"{timer.kind}:{case.id}").lstrip(":")
            await tx.schedule(
                case, timer.kind, tx.now + every, suffix=f"{base}:2".lstrip(":"), stage=2
            )
        else:
            text = self.escalate.format(**values)
            mentions = await called(tx, case, f"{timer.kind}:escalate", self.then(tx, case))
        await tx.post(case.group_id, text, key=timer.id, mentions=mentions, case=case)


def span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} 小时" if hours >= 1 else f"{delta.total_seconds() / 60:g} 分钟"


def _in(kind: str) -> Callable[[Case], bool]:
    return lambda case: case.state in TIMER_STATES[kind]


FIRST_RESPONSE = Reminder(
    pending=lambda case: case.first_response_at is None and case.state in NEEDS_PERSON,
    every=lambda t: timedelta(minutes=t.first_response_min),
    remind="⏰ {handle}（{amount}）{span}无人响应，请尽快处理",
    escalate="🔺 {handle} 已 {span}无人响应，升级主管跟进",
)
APPROVAL = Reminder(
    pending=_in("approval"),
    every=lambda t: timedelta(hours=t.approval_h),
    remind="🔺 {handle}（{amount}）等待主管审批已超过 {span}",
    escalate="🔺 {handle}（{amount}）已等待主管审批 {span}，请管理员介入",
    first=supervisors,
    then=admins,
)
RETURN_TRACKING = Reminder(
    pending=_in("return_tracking"),
    every=lambda t: timedelta(hours=t.return_tracking_h),
    remind="📦 {handle} 买家 {span}未填写退货单号，请联系买家寄回",
    escalate="🔺 {handle} 买家 {span}仍未寄回，请主管决定是否关闭或协商",
)
QC = Reminder(
    pending=_in("qc"),
    every=lambda t: timedelta(hours=t.qc_h),
    remind="🔍 {handle} 退货已签收 {span}，请尽快质检并退款（卡片上点「质检通过 · 退款」）",
    escalate="🔺 {handle} 退货签收后 {span}仍未质检，升级主管",
)


async def _buyer_overdue(tx: Tx, case: Case, timer: Timer) -> None:
    """A buyer message unanswered for `[timers] first_response_min` is overdue: the card says
    so, the digest counts it (against the assignee), and the assignee — or, with nobody on the
    case, the supervisors — is reminded, once."""
    data = RefundData.of(case)
    waiting = data.awaiting_reply
    if case.state not in OPEN or waiting is None or waiting.overdue:
        return
    waiting.overdue = tx.now.isoformat()
    owner = tx.svc.staff.get(case.assignee) if case.assignee else None
    mentions = (
        (tx.svc.staff.mention(owner),) if owner else fresh(data, timer.kind, supervisors(tx, case))
    )
    await tx.cases.touch(case, now=tx.now, data=data.dump())
    await tx.audit(
        case, "system", "buyer_overdue", from_state=case.state, assignee=case.assignee, n=waiting.n
    )
    await tx.sync_card(case)
    minutes = span(timedelta(minutes=tx.svc.settings.timers.first_response_min))
    await tx.post(
        case.group_id,
        f"⏰ {case.handle}（{format_fen(case.amount_fen)}）买家留言 {minutes}未回复，请尽快回复"
        f"（回复 {case.handle} 内容，或点卡片上的「常用回复」）",
        key=timer.id,
        mentions=mentions,
        case=case,
    )


async def _deadline_warn(tx: Tx, case: Case, timer: Timer) -> None:
    if case.state not in NEEDS_PERSON | {S.WAITING_INTERCEPT} or case.deadline_at is None:
        return
    left = case.deadline_at - tx.now
    if left.total_seconds() <= 0:
        text = f"⛔ {case.handle}（{format_fen(case.amount_fen)}）已过平台处理时限，平台可能已自动同意退款，请立即核对"
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
    mentions = await called(tx, case, timer.kind, owners(tx, case))
    if last:
        mentions += await called(tx, case, "deadline", supervisors(tx, case))
    await tx.post(
        case.group_id, text, key=timer.id, mentions=tuple(dict.fromkeys(mentions)), case=case
    )
    await tx.sync_card(case, refresh=timer.id)


RUNNERS: dict[str, TimerRunner] = {
    "first_response": FIRST_RESPONSE,
    "deadline_warn": _deadline_warn,
    "approval": APPROVAL,
    "return_tracking": RETURN_TRACKING,
    "qc": QC,
    "buyer_reply": _buyer_overdue,
    "intercept_feedback": intercept.on_feedback_timer,
}
# Timers that belong to no case (periodic jobs that re-arm themselves).
JOBS: dict[str, JobRunner] = {
    "logistics_scan": watch.run_scan,
    "digest": digest.run_scheduled,
}


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

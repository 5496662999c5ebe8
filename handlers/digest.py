"""The daily digest: what happened in a group's day and what is at risk, once per group per day.

Figures come from indexed range queries over `cases` (created_at, closed_at, decided_at,
deadline_at) and the audit log (action, at); other flows add sections through `SECTIONS`.

Who answered and how fast (first response, per person) is `handlers.scorecard`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from handlers import masking, scorecard
from handlers.context import Services, Tx
from handlers.logistics.stats import logistics_stats
from handlers.message import Field, Notice, Tone
from handlers.money import format_fen
from handlers.payout import flow as payout
from handlers.refund.machine import NEEDS_PERSON, OPEN, RefundState
from handlers.response import AUTOMATIC
from storage.enums import CaseKind
from storage.models import AuditEntry, Case, Digest, Timer
from storage.repositories.queue import insert_once

PATH_TEXT = {1: "未发货", 2: "已发货", 3: "已收货", 4: "退货"}


@dataclass(frozen=True)
class Span:
    """A local-time range [since, until) and how to name it."""

    since: datetime
    until: datetime
    label: str

    @classmethod
    def day(cls, day: date, tz: tzinfo) -> Span:
        start = datetime.combine(day, time(), tz)
        return cls(start, start + timedelta(days=1), f"{day:%m-%d}")

    @classmethod
    def days(cls, first: date, last: date, tz: tzinfo) -> Span:
        start = datetime.combine(first, time(), tz)
        end = datetime.combine(last + timedelta(days=1), time(), tz)
        label = f"{first:%m-%d}" if first == last else f"{first:%m-%d} – {last:%m-%d}"
        return cls(start, end, label)


@dataclass
class Figures:
    group_id: str
    span: Span
    new_by_path: dict[int, int] = field(default_factory=dict)
    closed: int = 0
    refunded: int = 0
    refunded_fen: int = 0
    rejected: int = 0
    pending_by_path: dict[int, int] = field(default_factory=dict)
    auto_approved: int = 0
    escalations: int = 0
    response_median_s: float | None = None
    response_within: float | None = None
    responded: int = 0
    # Refunds a rule sent to a person: the first-response figure is over these.
    awaited: int = 0
    target_min: int = 30
    buyer_overdue: int = 0
    complaints: int = 0
    # Staff id (scorecard.UNASSIGNED: cases nobody had taken) → their figures.
    people: dict[str, scorecard.Person] = field(default_factory=dict)
    deadlines_met: int = 0
    deadlines_missed: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    pending_by_owner: dict[str, list[str]] = field(default_factory=dict)
    new_by_day: list[tuple[str, int]] = field(default_factory=list)
    extra: list[tuple[str, list[Field], list[str]]] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(self.new_by_path.values())

    @property
    def pending(self) -> int:
        return sum(self.pending_by_path.values())


# Flows that add a section: (tx, group_id or None for all, span) → (title, fields, lines) or None.
Section = Callable[[Tx, str | None, Span], Awaitable[tuple[str, list[Field], list[str]] | None]]
SECTIONS: list[Section] = []


async def figures(tx: Tx, group_id: str | None, span: Span) -> Figures:
    """The figures of one group (None: every group) over `span`; pending is as of now."""
    fig = Figures(group_id or "", span)
    refunds = in_group(Case.kind == CaseKind.REFUND.value, group_id)
    since, until = span.since, span.until
    created = and_(refunds, Case.created_at >= since, Case.created_at < until)
    s = tx.session

    rows = await s.execute(select(Case.path, func.count()).where(created).group_by(Case.path))
    fig.new_by_path = {int(p): int(n) for p, n in rows.all()}
    closed = and_(refunds, Case.closed_at >= since, Case.closed_at < until)
    ended = await s.execute(
        select(Case.state, func.count(), func.coalesce(func.sum(Case.amount_fen), 0))
        .where(closed)
        .group_by(Case.state)
    )
    for state, n, fen in ended.all():
        fig.closed += int(n)
        if state == RefundState.REFUNDED:
            fig.refunded, fig.refunded_fen = int(n), int(fen)
        elif state == RefundState.REJECTED:
            fig.rejected = int(n)
    rows = await s.execute(
        select(Case.path, func.count())
        .where(refunds, Case.state.in_([st.value for st in OPEN]))
        .group_by(Case.path)
    )
    fig.pending_by_path = {int(p): int(n) for p, n in rows.all()}
    automatic = or_(Case.decided_by.like("rule:%"), Case.decided_by.in_(AUTOMATIC))
    fig.auto_approved = int(
        await s.scalar(
            select(func.count()).where(
                refunds, Case.decided_at >= since, Case.decided_at < until, automatic
            )
        )
        or 0
    )
    fig.escalations = int(
        await s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .join(Case, Case.id == AuditEntry.case_pk)
            .where(
                in_group(AuditEntry.action == "escalate", group_id),
                AuditEntry.at >= since,
                AuditEntry.at < until,
            )
        )
        or 0
    )
    await _first_response(tx, fig, created)
    await _deadlines(tx, fig, refunds)
    rows = await s.execute(
        select(Case.reason, func.count().label("n"))
        .where(created, Case.reason != "")
        .group_by(Case.reason)
        .order_by(func.count().desc(), Case.reason)
        .limit(5)
    )
    # Reasons are the buyers' words: personal data in them stays behind.
    fig.top_reasons = [(masking.redact(str(r)), int(n)) for r, n in rows.all()]
    await _pending_owners(tx, fig, refunds)
    for section in SECTIONS:
        extra = await section(tx, group_id, span)
        if extra is not None:
            fig.extra.append(extra)
    return fig


def in_group(condition: Any, group_id: str | None) -> Any:
    return condition if group_id is None else and_(condition, Case.group_id == group_id)


async def daily(tx: Tx, group_id: str | None, span: Span) -> list[tuple[str, dict[int, int], int]]:
    """Per local day of `span`: (MM-DD, new refunds by path, closed refunds)."""
    days = []
    start = span.since
    while start < span.until:
        end = start + timedelta(days=1)
        refunds = in_group(Case.kind == CaseKind.REFUND.value, group_id)
        rows = await tx.session.execute(
            select(Case.path, func.count())
            .where(refunds, Case.created_at >= start, Case.created_at < end)
            .group_by(Case.path)
        )
        closed = await tx.session.scalar(
            select(func.count()).where(refunds, Case.closed_at >= start, Case.closed_at < end)
        )
        days.append((f"{start:%m-%d}", {int(p): int(n) for p, n in rows.all()}, int(closed or 0)))
        start = end
    return days


async def _first_response(tx: Tx, fig: Figures, created: Any) -> None:
    answered = await scorecard.first_responses(tx, created)
    fig.target_min, fig.awaited = answered.target_min, answered.awaited
    fig.responded, fig.response_median_s = len(answered.waits), answered.median_s
    fig.response_within, fig.people = answered.within, answered.people
    fig.buyer_overdue, fig.complaints = await scorecard.activity(
        tx, fig.people, group_id=fig.group_id or None, since=fig.span.since, until=fig.span.until
    )


async def _deadlines(tx: Tx, fig: Figures, refunds: Any) -> None:
    until = min(fig.span.until, tx.now)
    rows = await tx.session.execute(
        select(Case.decided_at, Case.deadline_at, Case.state, Case.closed_at).where(
            refunds, Case.deadline_at >= fig.span.since, Case.deadline_at < until
        )
    )
    for decided_at, deadline_at, state, closed_at in rows.all():
        if deadline_at is None:
            continue
        if decided_at is not None and decided_at <= deadline_at:
            fig.deadlines_met += 1
        elif state == RefundState.CANCELLED and closed_at is not None and closed_at <= deadline_at:
            continue
        else:
            fig.deadlines_missed += 1


async def _pending_owners(tx: Tx, fig: Figures, refunds: Any) -> None:
    rows = await tx.session.execute(
        select(Case.handle, Case.assignee, Case.state, Case.amount_fen)
        .where(refunds, Case.state.in_([st.value for st in NEEDS_PERSON]))
        .order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id)
        .limit(200)
    )
    for handle, assignee, state, amount in rows.all():
        owner = (
            tx.svc.staff.name(assignee)
            if assignee
            else ("主管" if state == RefundState.ESCALATED else "未认领")
        )
        fig.pending_by_owner.setdefault(owner, []).append(f"{handle} {format_fen(amount)}")


def _by_path(counts: dict[int, int]) -> str:
    parts = [f"{PATH_TEXT.get(p, '其他')} {n}" for p, n in sorted(counts.items()) if n]
    total = sum(counts.values())
    return f"{total}（{' · '.join(parts)}）" if parts else "0"


def render(
    fig: Figures, group_name: str, link: str = "", names: dict[str, str] | None = None
) -> Notice:
    """The digest as a neutral notice: a card in the sandbox and WeCom, Markdown elsewhere.
    `names`: staff id → display name, for the per-person lines."""
    response = "—"
    if fig.response_median_s is not None and fig.response_within is not None:
        response = (
            f"中位 {scorecard.duration(fig.response_median_s)} · {fig.target_min} 分钟内 "
            f"{fig.response_within:.0%}（需人工 {fig.awaited} 单）"
        )
    fields = [
        Field("新增", _by_path(fig.new_by_path)),
        Field(
            "完结",
            f"{fig.closed}（退款 {fig.refunded} 笔 {format_fen(fig.refunded_fen)} · 拒绝 {fig.rejected}）",
        ),
        Field("待处理", _by_path(fig.pending_by_path)),
        Field("自动处理", f"{fig.auto_approved} 单（规则或系统决定，不计入首次响应）"),
        Field("首次响应", response),
        Field("买家留言超时", str(fig.buyer_overdue)),
        Field("平台时限", f"按时 {fig.deadlines_met} · 超时 {fig.deadlines_missed}"),
        Field("升级主管", str(fig.escalations)),
    ]
    if fig.complaints:
        fields.append(Field("投诉风险", str(fig.complaints)))
    lines = []
    names = names or {}
    for staff_id in scorecard.order(fig.people, names):
        lines.append("👤 " + scorecard.row(staff_id, fig.people[staff_id], names))
    for title, extra_fields, extra_lines in fig.extra:
        fields += extra_fields
        lines += [f"{title}：{line}" for line in extra_lines]
    if fig.top_reasons:
        lines.append("退款原因 Top：" + " · ".join(f"{r} {n}" for r, n in fig.top_reasons))
    for owner, items in sorted(fig.pending_by_owner.items()):
        shown = "、".join(items[:8]) + (f" 等 {len(items)} 件" if len(items) > 8 else "")
        lines.append(f"待办 · {owner}：{shown}")
    tone = Tone.DANGER if fig.deadlines_missed else Tone.WARNING if fig.pending else Tone.SUCCESS
    notice = Notice(
        key=f"digest:{fig.group_id}:{fig.span.label}",
        title=f"售后日报 · {group_name} · {fig.span.label}",
        status=f"新增 {fig.new} · 完结 {fig.closed} · 待处理 {fig.pending}",
        tone=tone,
        fields=tuple(fields),
        lines=tuple(lines),
        footer=f"统计 {fig.span.label}（{fig.span.since.tzname()}）· 待处理为当前数",
        link=link,
    )
    return masking.redact_notice(notice)


def dashboard_link(svc: Services, span: Span) -> str:
    base = svc.settings.server.public_base_url.rstrip("/")
    if not base:
        return ""
    return f"{base}/dashboard?from={span.since:%Y-%m-%d}&to={(span.until - timedelta(days=1)):%Y-%m-%d}"


def staff_names(svc: Services, fig: Figures) -> dict[str, str]:
    """Display names of everyone in `fig.people`."""
    return {s: svc.staff.name(s) for s in fig.people if s != scorecard.UNASSIGNED}


async def build(tx: Tx, group_id: str, span: Span) -> Notice:
    group = tx.svc.settings.group(group_id)
    name = (group.name or group.id) if group else group_id
    fig = await figures(tx, group_id, span)
    return render(fig, name, dashboard_link(tx.svc, span), staff_names(tx.svc, fig))


async def _payouts(
    tx: Tx, group_id: str | None, span: Span
) -> tuple[str, list[Field], list[str]] | None:
    t = await payout.totals(tx, span.since, span.until, group_id=group_id)
    if not (t.requested.count or t.approved.count or t.paid.count):
        return None
    text = " · ".join(
        f"{label} {tally.count} 笔 {format_fen(tally.fen)}"
        for label, tally in (("申请", t.requested), ("批准", t.approved), ("已付", t.paid))
    )
    return "打款", [Field("打款", text)], []


async def _parcels(
    tx: Tx, group_id: str | None, span: Span
) -> tuple[str, list[Field], list[str]] | None:
    stats = await logistics_stats(tx, span.since, span.until, group_id=group_id)
    if not (stats.intercepts_tried or stats.intercepts_succeeded or stats.anomalies):
        return None
    intercepts, anomalies = stats.lines()
    fields = [Field("拦截", intercepts.removeprefix("拦截 "))]
    return "物流", fields, [anomalies]


SECTIONS.extend([_parcels, _payouts])


# -- the schedule ---------------------------------------------------------------------------


def digest_tz(svc: Services) -> ZoneInfo:
    return ZoneInfo(svc.settings.digest.timezone)


def next_run(svc: Services, now: datetime) -> datetime:
    hour, minute = (int(x) for x in svc.settings.digest.time.split(":"))
    local = now.astimezone(digest_tz(svc))
    run = datetime.combine(local.date(), time(hour, minute), digest_tz(svc))
    return run if run > local else run + timedelta(days=1)


async def arm(tx: Tx) -> None:
    """Make sure every group has its next digest timer (idempotent across instances)."""
    if not tx.svc.settings.digest.enabled:
        return
    due = next_run(tx.svc, tx.now)
    for group in tx.svc.settings.groups:
        await tx.timers.schedule(
            f"digest:{group.id}:{due.astimezone(digest_tz(tx.svc)):%Y-%m-%d}",
            "digest",
            due_at=due,
            now=tx.now,
            payload={"group": group.id},
        )


async def run_scheduled(tx: Tx, timer: Timer) -> None:
    """09:00: yesterday's digest to the group, exactly once per group and day; then re-arm."""
    group_id = str(timer.payload["group"])
    today = tx.now.astimezone(digest_tz(tx.svc)).date()
    span = Span.day(today - timedelta(days=1), digest_tz(tx.svc))
    first = await insert_once(
        tx.session,
        Digest,
        {"group_id": group_id, "day": f"{span.since:%Y-%m-%d}", "sent_at": tx.now},
    )
    if first and tx.svc.settings.group(group_id) is not None:
        await tx.notice(group_id, await build(tx, group_id, span))
    await arm(tx)


def span_for(svc: Services, word: str, now: datetime) -> Span:
    """'' / today → today so far; yesterday / 昨天 → yesterday; 7 / 7天 → the last 7 days."""
    tz = digest_tz(svc)
    today = now.astimezone(tz).date()
    word = word.strip().lower().removesuffix("天").removesuffix("d")
    if word in ("yesterday", "昨", "昨日"):
        return Span.day(today - timedelta(days=1), tz)
    if word.isdigit() and 1 <= int(word) <= 90:
        return Span.days(today - timedelta(days=int(word) - 1), today, tz)
    return Span.day(today, tz)

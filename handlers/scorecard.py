"""Who answered, and how fast: the digest's first-response figure and each person's row.

First response follows `handlers.response`: a person replying to the buyer or deciding. It
is measured over the refunds a rule sent to a person to review; what the rules handled on
their own is counted apart (自动处理). Per person: the median of the first responses they
gave, the cases they answered or decided (处理), the buyer messages that went unanswered on
their cases (买家留言超时, `buyer_overdue` in the audit log) and their approvals (审批).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from handlers.context import Tx
from handlers.response import RESPONSES, RULE, is_person
from storage.models import AuditEntry, Case

# Whose row an overdue buyer message on a case nobody had taken goes to.
UNASSIGNED = ""
ANSWERS = sorted(RESPONSES)


@dataclass
class Person:
    """One person over the span: first responses (seconds each), cases answered or decided,
    buyer messages left unanswered on their cases, approvals."""

    first_response_s: list[float] = field(default_factory=list)
    handled: set[int] = field(default_factory=set)
    overdue: int = 0
    approvals: int = 0

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.first_response_s) if self.first_response_s else None


@dataclass
class Answered:
    """The first-response figure over the refunds a rule sent to a person."""

    target_min: int
    # Case pk → seconds from arrival to its first response.
    waits: dict[int, float] = field(default_factory=dict)
    # Those past the target without a response (and not ended before it).
    missed: int = 0
    people: dict[str, Person] = field(default_factory=dict)

    @property
    def awaited(self) -> int:
        return len(self.waits) + self.missed

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.waits.values()) if self.waits else None

    @property
    def within(self) -> float | None:
        if not self.awaited:
            return None
        target = self.target_min * 60
        return sum(1 for w in self.waits.values() if w <= target) / self.awaited


def sent_to_a_person() -> Any:
    """A refund the rules gave a person to review (rather than approving, intercepting or
    waiting for the return on their own)."""
    review = aliased(AuditEntry)
    return (
        select(review.id)
        .where(review.case_pk == Case.id, review.action == "review", review.actor.like(f"{RULE}%"))
        .correlate(Case)
        .exists()
    )


async def first_responses(tx: Tx, created: Any) -> Answered:
    """The first responses to the refunds `created` selects that a rule sent to a person. One
    without a response counts as missed once the target has passed, unless it ended (the buyer
    withdrew, the platform closed it) before the target did."""
    answered = Answered(tx.svc.settings.timers.first_response_min)
    target = timedelta(minutes=answered.target_min)
    waited = and_(created, sent_to_a_person())
    rows = await tx.session.execute(
        select(Case.id, Case.created_at, Case.first_response_at, Case.closed_at).where(waited)
    )
    for pk, created_at, responded_at, closed_at in rows.all():
        if responded_at is not None:
            answered.waits[pk] = (responded_at - created_at).total_seconds()
        elif tx.now - created_at >= target and (
            closed_at is None or closed_at - created_at >= target
        ):
            answered.missed += 1
    # Who answered each first: the earliest response of a person in the audit log.
    answers = await tx.session.execute(
        select(AuditEntry.case_pk, AuditEntry.actor)
        .join(Case, Case.id == AuditEntry.case_pk)
        .where(waited, Case.first_response_at.is_not(None), AuditEntry.action.in_(ANSWERS))
        .order_by(AuditEntry.case_pk, AuditEntry.at, AuditEntry.id)
    )
    first: dict[int, str] = {}
    for case_pk, actor in answers.all():
        if case_pk is not None and case_pk not in first and is_person(actor):
            first[case_pk] = actor
    for case_pk, actor in first.items():
        if case_pk in answered.waits:
            person = answered.people.setdefault(actor, Person())
            person.first_response_s.append(answered.waits[case_pk])
    return answered


async def activity(
    tx: Tx, people: dict[str, Person], *, group_id: str | None, since: datetime, until: datetime
) -> tuple[int, int]:
    """Add to `people` what each did in [since, until) on any case of the group (all groups:
    None), and the buyer messages that went overdue on each one's cases; the number of overdue
    buyer messages and of complaints."""
    where = [
        AuditEntry.action.in_([*ANSWERS, "buyer_overdue", "complaint"]),
        AuditEntry.at >= since,
        AuditEntry.at < until,
    ]
    if group_id is not None:
        where.append(Case.group_id == group_id)
    rows = await tx.session.execute(
        select(AuditEntry.actor, AuditEntry.action, AuditEntry.case_pk, AuditEntry.detail)
        .join(Case, Case.id == AuditEntry.case_pk)
        .where(*where)
    )
    overdue = complaints = 0
    for actor, action, case_pk, detail in rows.all():
        if action == "buyer_overdue":
            overdue += 1
            owner = str((detail or {}).get("assignee") or UNASSIGNED)
            people.setdefault(owner, Person()).overdue += 1
        elif action == "complaint":
            complaints += 1
        elif is_person(actor) and case_pk is not None:
            person = people.setdefault(actor, Person())
            person.handled.add(case_pk)
            person.approvals += action == "approve"
    return overdue, complaints


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} 秒"
    if seconds < 5400:
        return f"{seconds / 60:.0f} 分钟"
    return f"{seconds / 3600:.1f} 小时"


def order(people: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """People by name, the unassigned last."""
    return sorted(people, key=lambda s: (s == UNASSIGNED, names.get(s, s)))


def name(staff_id: str, names: Mapping[str, str]) -> str:
    return "未认领" if staff_id == UNASSIGNED else names.get(staff_id, staff_id)


def first_text(person: Person) -> str:
    median = person.median_s
    if median is None:
        return "—"
    return f"{duration(median)}（{len(person.first_response_s)} 单）"


def row(staff_id: str, person: Person, names: Mapping[str, str]) -> str:
    """One person's figures in a line: 首次响应中位 · 处理 · 买家留言超时 · 审批."""
    who = name(staff_id, names)
    if staff_id == UNASSIGNED:
        return f"{who}：买家留言超时 {person.overdue}"
    return (
        f"{who}：首次响应中位 {first_text(person)} · 处理 {len(person.handled)} 单"
        f" · 买家留言超时 {person.overdue} · 审批 {person.approvals}"
    )

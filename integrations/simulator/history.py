"""The demo's past month: when the simulated shop's cases arrived, and what the team did.

`arrivals` lays out each local day of the month (quiet nights, busy late mornings and
evenings, weekends a little busier, one promotion day opening with a rush);
`Team.next_step` says what a person does next on a case as the case is now (answer the
buyer, approve within their limit, reject now and then, confirm a payout, handle a parcel),
and when, inside working hours. Both are deterministic for a seed, so the same seed always
tells the same month.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from handlers.authority import account
from handlers.config import Role, StaffSettings
from handlers.conversation import awaiting_reply
from handlers.logistics.machine import AnomalyState
from handlers.money import yuan_to_fen
from handlers.payout.machine import PayoutState
from handlers.refund.machine import RefundState
from storage.enums import CaseKind
from storage.models import Case

Kind = Literal["refund", "payout", "parcel", "rush"]

# For each refund a weekday brings, this many payouts and troubled parcels; weekends bring a
# fifth more. The promotion day brings PROMO_FACTOR times as many refunds, opening with a
# rush of RUSH within a minute.
PAYOUTS_PER_REFUND = 0.2
PARCELS_PER_REFUND = 0.08
PROMO_DAYS_AGO = 12
PROMO_FACTOR = 3.0
RUSH = 12
# How the day's arrivals spread over the local hours (quiet at night, peaks at 10–12 and 20–22).
HOUR_WEIGHTS = [1, 1, 0, 0, 0, 0, 1, 2, 4, 6, 9, 9, 7, 6, 7, 7, 6, 6, 5, 6, 8, 9, 7, 3]
# Paths as the live simulator weighs them (1–4, 5 = price difference).
PATH_WEIGHTS = [(1, 25), (2, 20), (3, 30), (4, 15), (5, 10)]
# Working hours: outside them a case waits for the morning.
WORK_START = time(9, 0)
WORK_END = time(23, 0)

REPLIES = {
    1: "亲，已经帮您拦下这单不发货了，退款马上就到，请留意～",
    2: "亲，包裹已经在拦截了，拦截成功会马上给您退款，快递员派送的话直接拒收就好～",
    3: "亲，非常抱歉给您添麻烦了！已经在加急核实，今天内给您答复～",
    4: "亲，退货地址在退款详情里，寄回后填一下单号，我们收到当天就处理～",
    0: "亲，收到您的消息了，已经在为您处理，请稍等～",
}
REJECT_REASONS = [
    "买家已确认收货且商品无质量问题",
    "已与买家协商换货",
    "照片显示商品完好，已电话沟通",
]
ANOMALY_NOTES = ["已联系买家，快递会再次派送", "快递已恢复走件", "买家同意等待"]


@dataclass(frozen=True, order=True)
class Arrival:
    """Something happens at the shop: a refund on `path`, a payout, a troubled parcel, or a
    rush of refunds at once."""

    at: datetime
    kind: Kind
    path: int = 0


@dataclass(frozen=True)
class Step:
    """What a person types, when, and in which group."""

    at: datetime
    user: str
    text: str
    group: str


def arrivals(until: datetime, days: int, tz: tzinfo, seed: int, *, per_day: float) -> list[Arrival]:
    """The `days` before `until`, about `per_day` refunds a weekday, oldest first."""
    found: list[Arrival] = []
    last = until.astimezone(tz).date()
    for back in range(days, -1, -1):
        day = last - timedelta(days=back)
        rnd = random.Random(f"{seed}:{day.isoformat()}:{back}")
        found += _day(day, back, rnd, tz, per_day)
    start = until - timedelta(days=days)
    return sorted(a for a in found if start <= a.at < until)


def _day(day: date, back: int, rnd: random.Random, tz: tzinfo, per_day: float) -> list[Arrival]:
    weekend = day.weekday() >= 5
    # A slow rise over the month, so the trend has somewhere to go.
    level = per_day * (1.2 if weekend else 1.0) * (0.85 + 0.3 * (1 - back / 30))
    promo = back == PROMO_DAYS_AGO
    if promo:
        level *= PROMO_FACTOR
    refunds = max(0, round(rnd.gauss(level, math.sqrt(level))))
    midnight = datetime.combine(day, time(), tz)

    def moment() -> datetime:
        hour = rnd.choices(range(24), HOUR_WEIGHTS)[0]
        return midnight + timedelta(hours=hour, seconds=rnd.uniform(0, 3600))

    found = [
        Arrival(moment(), "refund", rnd.choices(*zip(*PATH_WEIGHTS, strict=True))[0])
        for _ in range(refunds)
    ]
    found += [Arrival(moment(), "payout") for _ in range(_count(rnd, per_day * PAYOUTS_PER_REFUND))]
    found += [Arrival(moment(), "parcel") for _ in range(_count(rnd, per_day * PARCELS_PER_REFUND))]
    if promo:
        found.append(Arrival(midnight + timedelta(minutes=rnd.uniform(1, 4)), "rush"))
    return found


def _count(rnd: random.Random, mean: float) -> int:
    return int(mean) + (1 if rnd.random() < mean - int(mean) else 0)


class Team:
    """The demo staff at work: who does what next on a case, and when."""

    def __init__(self, staff: Sequence[StaffSettings], tz: tzinfo, seed: int) -> None:
        self.tz = tz
        self.seed = seed
        self.agents = [s for s in staff if Role.AGENT in s.roles]
        self.supervisors = [s for s in staff if Role.SUPERVISOR in s.roles]
        self.finance = [s for s in staff if Role.FINANCE in s.roles]
        self.admins = [s for s in staff if Role.ADMIN in s.roles]

    def next_step(self, case: Case, now: datetime) -> Step | None:
        """The next thing someone does on `case` as it is now; None when it waits for no one."""
        if not case.group_id:
            return None
        rnd = random.Random(f"{self.seed}:{case.kind}:{case.case_id}:{case.version}")
        if case.kind == CaseKind.REFUND:
            return self._refund(case, now, rnd)
        if case.kind == CaseKind.PAYOUT:
            return self._payout(case, now, rnd)
        if case.kind == CaseKind.ANOMALY:
            return self._anomaly(case, now, rnd)
        return None

    def _refund(self, case: Case, now: datetime, rnd: random.Random) -> Step | None:
        state = case.state
        agent = self._pick(self.agents, case, rnd)
        if awaiting_reply(case) and agent is not None:
            text = REPLIES.get(case.path, REPLIES[0])
            return self._step(case, now, rnd, agent, f"回复 {case.handle} {text}", minutes=8)
        if state == RefundState.AWAITING_REVIEW and agent is not None:
            if case.first_response_at is None and rnd.random() < 0.5:
                text = REPLIES.get(case.path, REPLIES[0])
                return self._step(case, now, rnd, agent, f"回复 {case.handle} {text}", minutes=9)
            if rnd.random() < 0.1:
                reason = rnd.choice(REJECT_REASONS)
                return self._step(case, now, rnd, agent, f"拒绝 {case.handle} {reason}", minutes=25)
            # Within their limit agents decide; above it a supervisor, or the agent's approval
            # goes up to one.
            decider = agent
            if not self._within(agent, case) and self.supervisors and rnd.random() < 0.6:
                decider = self._pick(self.supervisors, case, rnd) or agent
            return self._step(case, now, rnd, decider, f"通过 {case.handle}", minutes=25)
        if state == RefundState.ESCALATED:
            able = [p for p in self.supervisors if self._within(p, case)] or self.admins
            boss = self._pick(able, case, rnd)
            if boss is None:
                return None
            if rnd.random() < 0.08:
                reason = rnd.choice(REJECT_REASONS)
                return self._step(case, now, rnd, boss, f"拒绝 {case.handle} {reason}", minutes=40)
            return self._step(case, now, rnd, boss, f"通过 {case.handle}", minutes=40)
        if state == RefundState.INSPECTING and agent is not None:
            checker = (
                agent if self._within(agent, case) else self._pick(self.supervisors, case, rnd)
            )
            if checker is None:
                return None
            return self._step(case, now, rnd, checker, f"通过 {case.handle}", minutes=90)
        if state == RefundState.FAILED:
            boss = self._pick(self.supervisors, case, rnd)
            if boss is None:
                return None
            return self._step(case, now, rnd, boss, f"重试 {case.handle}", minutes=30)
        return None

    def _payout(self, case: Case, now: datetime, rnd: random.Random) -> Step | None:
        if case.state == PayoutState.REQUESTED:
            boss = self._pick(self.supervisors, case, rnd)
            if boss is None:
                return None
            return self._step(case, now, rnd, boss, f"通过 {case.handle}", minutes=60)
        if case.state == PayoutState.APPROVED:
            payer = self._pick(self.finance, case, rnd)
            if payer is None:
                return None
            reference = f"2088{rnd.randrange(10**12):012d}"
            return self._step(
                case, now, rnd, payer, f"打款确认 {case.handle} {reference}", minutes=120
            )
        return None

    def _anomaly(self, case: Case, now: datetime, rnd: random.Random) -> Step | None:
        agent = self._pick(self.agents, case, rnd)
        if agent is None:
            return None
        if case.state == AnomalyState.OPEN:
            return self._step(case, now, rnd, agent, f"联系快递 {case.handle}", minutes=30)
        if case.state == AnomalyState.CONTACTING:
            if rnd.random() < 0.4:
                return self._step(case, now, rnd, agent, f"补发 {case.handle}", minutes=180)
            note = rnd.choice(ANOMALY_NOTES)
            return self._step(case, now, rnd, agent, f"忽略 {case.handle} {note}", minutes=180)
        return None

    def _pick(
        self, people: list[StaffSettings], case: Case, rnd: random.Random
    ) -> StaffSettings | None:
        if not people:
            return None
        mine = [p for p in people if p.id == case.assignee]
        return mine[0] if mine else rnd.choice(people)

    @staticmethod
    def _within(person: StaffSettings, case: Case) -> bool:
        limit = person.refund_limit
        return limit is None or case.amount_fen <= yuan_to_fen(limit)

    def _step(
        self,
        case: Case,
        now: datetime,
        rnd: random.Random,
        who: StaffSettings,
        text: str,
        *,
        minutes: float,
    ) -> Step:
        """`who` types `text` after a typical wait of `minutes` (a long tail), in working hours."""
        wait = timedelta(minutes=min(max(rnd.lognormvariate(math.log(minutes), 0.8), 1.0), 600))
        return Step(self.working(now + wait, rnd), account(who, "sandbox"), text, case.group_id)

    def working(self, at: datetime, rnd: random.Random) -> datetime:
        """`at`, or the next morning's start of work (plus a little) when it falls outside."""
        local = at.astimezone(self.tz)
        if WORK_START <= local.time() < WORK_END:
            return at
        day = local.date() if local.time() < WORK_START else local.date() + timedelta(days=1)
        start = datetime.combine(day, WORK_START, self.tz)
        return start + timedelta(minutes=rnd.uniform(2, 45))

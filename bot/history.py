"""`refundops demo`'s past month: an empty demo database is filled with the simulated shop's
last `[simulator] history_days` before the demo starts, so the dashboard has trends.

Nothing is written around the product: a second app on the same database runs on a shifted
clock that walks through the month. The simulated shop's events go through its signed ingest
API, the team's commands through the sandbox group's `say`, and the event processor,
scheduler and dispatcher run after each moment, so cases, audit lines, timers, cards,
reminders and digests carry the times they would have had. A marker row makes it happen once
per database; an interrupted run is named at the next start, not repeated.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bot.keys import DISPATCHER, PROCESSOR, SCHEDULER, SERVICES, SETTINGS
from bot.services import BotServices
from bot.settings import Settings
from handlers.clock import FakeClock, SystemClock
from integrations.carrier.settings import CarrierSettings
from integrations.carrier.simulator import SimulatedCarrier
from integrations.commerce.client import SimulatedCommerce
from integrations.jushuitan.settings import WarehouseSettings
from integrations.simulator import feed, history
from storage.coordination import Coordination, InProcessCoordination
from storage.enums import EventStatus, OutboxState, TimerState
from storage.models import Case, Event, OutboxItem, Timer
from storage.repositories.connector_state import ConnectorStateRepository

log = logging.getLogger(__name__)

MARKER = "demo.history"
# Follow-ups that take seconds in the live demo (a scan, a parcel coming back, a buyer
# chasing) take this many times longer in the month.
PACE = 60.0
# At most this many steps by people on one case (a case that keeps asking is left alone).
MAX_STEPS = 8
TICK = timedelta(seconds=1)


@dataclass
class Seeded:
    """What the month brought; `skipped` says why nothing was written."""

    cases: int = 0
    events: int = 0
    steps: int = 0
    skipped: str = ""


MakeApp = Callable[..., web.Application]


def history_settings(settings: Settings) -> Settings:
    """The demo's settings as the month runs them: every shop through the ingest API, the
    simulated shop system, carrier and a payout by hand, no simulator loop, no second month."""
    sim = settings.simulator.model_copy(update={"enabled": False, "via": "api", "history_days": 0})
    return settings.model_copy(
        update={
            "simulator": sim,
            "shops": [],
            "carrier": CarrierSettings(mode="simulator"),
            "warehouse": WarehouseSettings(),
            "payout": settings.payout.model_copy(update={"provider": "manual"}),
        }
    )


class MonthCoordination(InProcessCoordination):
    """The month's own budgets and dedup, on its clock; what it shows a sandbox group also
    reaches the pages open on the running demo (`pages`)."""

    def __init__(self, clock: FakeClock, pages: Coordination | None) -> None:
        super().__init__(monotonic=lambda: clock.now().timestamp())
        self.pages = pages

    async def publish(self, channel: str, message: str) -> None:
        await super().publish(channel, message)
        if self.pages is not None:
            await self.pages.publish(channel, message)


def first_month(make_app: MakeApp) -> Callable[[web.Application], Awaitable[None]]:
    """What the running demo does before its loops start: write the month, once."""

    async def write_month(app: web.Application) -> None:
        settings = app[SETTINGS]
        seeded = await seed(
            settings,
            make_app,
            pages=app[SERVICES].coord,
            progress=lambda day: log.info("… %s", day),
        )
        if seeded.skipped:
            log.info("no past month written: %s", seeded.skipped)
        else:
            log.info(
                "past month written: %d cases from %d events and %d steps by the team",
                seeded.cases,
                seeded.events,
                seeded.steps,
            )

    return write_month


async def seed(
    settings: Settings,
    make_app: MakeApp,
    *,
    pages: Coordination | None = None,
    until: datetime | None = None,
    progress: Callable[[str], None] = lambda _day: None,
) -> Seeded:
    """Fill the database with `[simulator] history_days` up to `until` (now), once."""
    days = settings.simulator.history_days
    if not days:
        return Seeded(skipped="history_days = 0")
    elsewhere = [g.id for g in settings.groups if g.channel != "sandbox"]
    if elsewhere:
        # A month of made-up cards must never reach a real WeCom or DingTalk group.
        return Seeded(skipped=f"groups {', '.join(elsewhere)} are not sandbox groups")
    end = until or SystemClock().now()
    clock = FakeClock(end - timedelta(days=days))
    number = settings.simulator.seed if settings.simulator.seed is not None else 0
    app = make_app(
        history_settings(settings),
        clock=clock,
        coord=MonthCoordination(clock, pages),
        commerce=SimulatedCommerce(number, latency_s=(0.0, 0.0)),
        workers=False,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        svc = app[SERVICES]
        async with svc.tx() as tx:
            marker = await ConnectorStateRepository(tx.session).get(MARKER)
        if marker is not None:
            if marker.get("state") != "done":
                return Seeded(
                    skipped="an earlier start was stopped while it wrote the month; "
                    "`make demo-reset` starts clean"
                )
            return Seeded(skipped="the month is already there")
        log.info("writing the demo's past %d days first; the live shop starts after it …", days)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            month = Month(app, svc, clock, session, f"http://127.0.0.1:{port}", number)
            await month.mark("writing", end, days)
            seeded = await month.run(end, days, progress)
            await month.mark("done", end, days, seeded)
        return seeded
    finally:
        await runner.cleanup()


def _by(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now


class Month:
    """The walk through the month: the shop's arrivals, their follow-ups, the team's steps and
    everything the product does meanwhile, in time order."""

    def __init__(
        self,
        app: web.Application,
        svc: BotServices,
        clock: FakeClock,
        session: aiohttp.ClientSession,
        base: str,
        number: int,
    ) -> None:
        self.app, self.svc, self.clock, self.session, self.base = app, svc, clock, session, base
        carrier = app[DISPATCHER].carrier
        self.sim = feed.ShopSimulator(
            clock,
            number,
            carrier=carrier if isinstance(carrier, SimulatedCarrier) else None,
            pace=PACE,
        )
        self.send = feed.SignedSender(
            session, base, svc.settings.ingest.secret.get_secret_value(), clock
        )
        self.team = history.Team(svc.settings.staff, svc.tz, number)
        self.number = number
        # The next step planned per case (its token), and a heap of (at, seq, case, token).
        self.planned: dict[int, int] = {}
        self.steps: dict[int, history.Step] = {}
        self.heap: list[tuple[datetime, int, int, int]] = []
        self.taken: dict[int, int] = {}
        self.seq = itertools.count(1)
        self.sent = 0
        self.done = 0

    async def run(self, end: datetime, days: int, progress: Callable[[str], None]) -> Seeded:
        per_day = self.svc.settings.simulator.history_per_day
        arrivals = history.arrivals(end, days, self.svc.tz, self.number, per_day=per_day)
        index, due = 0, await self._look(None)
        first = reported = self.clock.now().astimezone(self.svc.tz).date()
        while True:
            upcoming = [a.at for a in arrivals[index : index + 1]]
            upcoming += [self.heap[0][0]] if self.heap else []
            upcoming += [at for at in (self.sim.next_due(), *due.values()) if at is not None]
            if not upcoming or min(upcoming) >= end:
                break
            # On to the next moment; at least a second on, so what stays due (an item
            # another worker holds) cannot keep the month standing still.
            self.clock.set(max(min(upcoming), self.clock.now() + TICK))
            now = self.clock.now()
            events: list[feed.Event] = []
            while index < len(arrivals) and arrivals[index].at <= now:
                events += self._arrive(arrivals[index])
                index += 1
            events += self.sim.due()
            for event in events:
                await self.send(event)
            self.sent += len(events)
            await self._drain(
                events=bool(events) or _by(due["event"], now),
                timers=_by(due["timer"], now),
            )
            await self._steps_due(now)
            due = await self._look(now)
            day = now.astimezone(self.svc.tz).date()
            if day != reported and (day - first).days % 7 == 0:
                progress(f"{day:%m-%d}")
            reported = day
        async with self.svc.tx() as tx:
            cases = int(await tx.session.scalar(select(func.count()).select_from(Case)) or 0)
        return Seeded(cases=cases, events=self.sent, steps=self.done)

    def _arrive(self, arrival: history.Arrival) -> list[feed.Event]:
        if arrival.kind == "refund":
            return [self.sim.refund(arrival.path)]
        if arrival.kind == "payout":
            return [self.sim.payout()]
        if arrival.kind == "parcel":
            return self.sim.troubled_parcel()
        return self.sim.rush(history.RUSH)

    async def _drain(self, *, events: bool = True, timers: bool = True) -> None:
        """Apply the events, fire the timers and deliver what they queued, as the loops would."""
        processor, scheduler = self.app[PROCESSOR], self.app[SCHEDULER]
        while events and await processor.run_once() >= processor.batch:
            pass
        while timers and await scheduler.run_once() >= scheduler.batch:
            pass
        # A delivery may queue the next one (the shop system's answer moves the case on).
        while await self.app[DISPATCHER].run_once():
            pass

    async def _steps_due(self, now: datetime) -> None:
        while self.heap and self.heap[0][0] <= now:
            _, _, case_pk, token = heapq.heappop(self.heap)
            if self.planned.get(case_pk) != token:
                continue
            del self.planned[case_pk]
            step = self.steps.pop(case_pk)
            self.taken[case_pk] = self.taken.get(case_pk, 0) + 1
            url = f"{self.base}/sandbox/api/groups/{step.group}/say"
            async with self.session.post(url, json={"user": step.user, "text": step.text}) as resp:
                if resp.status != 200:
                    log.warning("history: %s said %r: %s", step.user, step.text, resp.status)
            self.done += 1
            await self._drain()

    async def _look(self, since: datetime | None) -> dict[str, datetime | None]:
        """Plan the next step of every case that changed since `since`; when the earliest
        timer, event and outbox item are due."""
        async with self.svc.tx() as tx:
            s = tx.session
            if since is not None:
                for case in (await s.scalars(select(Case).where(Case.updated_at >= since))).all():
                    self._plan(case, tx.now)
            return {
                "timer": await s.scalar(
                    select(func.min(Timer.due_at)).where(Timer.state == TimerState.PENDING.value)
                ),
                "outbox": await s.scalar(
                    select(func.min(OutboxItem.next_attempt_at)).where(
                        OutboxItem.state == OutboxState.PENDING.value
                    )
                ),
                "event": await s.scalar(
                    select(func.min(Event.next_attempt_at)).where(
                        Event.state == EventStatus.PENDING.value
                    )
                ),
            }

    def _plan(self, case: Case, now: datetime) -> None:
        if self.taken.get(case.id, 0) >= MAX_STEPS:
            return
        step = self.team.next_step(case, now)
        if step is None:
            self.planned.pop(case.id, None)
            return
        token = next(self.seq)
        self.planned[case.id] = token
        self.steps[case.id] = step
        heapq.heappush(self.heap, (step.at, token, case.id, token))

    async def mark(
        self, state: str, end: datetime, days: int, seeded: Seeded | None = None
    ) -> None:
        data: dict[str, object] = {"state": state, "until": end.isoformat(), "days": days}
        if seeded is not None:
            data |= {"cases": seeded.cases, "events": seeded.events, "steps": seeded.steps}
        async with self.svc.tx() as tx:
            await ConnectorStateRepository(tx.session).put(MARKER, data, now=tx.now)

"""The scheduler: fires due timers, each in the transaction that marks it fired (exactly once)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.metrics import Metrics
from bot.services import BotServices
from bot.worker import forever
from handlers import timers
from storage.models import Timer
from storage.repositories.timers import TIMERS_TOPIC

log = logging.getLogger(__name__)


@dataclass
class Scheduler:
    svc: BotServices
    metrics: Metrics
    batch: int = 100

    async def run(self) -> None:
        poll_s = self.svc.settings.timers.poll_s
        await forever("scheduler", self.run_once, self.svc.coord, TIMERS_TOPIC, poll_s)

    async def run_once(self) -> int:
        async with self.svc.tx() as tx:
            due = await tx.timers.claim(
                now=tx.now, limit=self.batch, lease_s=self.svc.settings.dispatch.lease_s
            )
        for timer in due:
            await self.fire(timer)
        return len(due)

    async def fire(self, timer: Timer) -> None:
        try:
            async with self.svc.tx() as tx:
                if await tx.timers.fired(timer, now=tx.now):
                    await timers.fire(tx, timer)
            self.metrics.timers_fired.labels(timer.kind).inc()
        except Exception:
            log.exception("timer %s failed; it is retried when its lease ends", timer.id)

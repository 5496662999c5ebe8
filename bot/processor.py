"""The event processor: applies stored events in arrival order, one transaction each."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.errors import UserError
from bot.metrics import Metrics
from bot.worker import forever
from handlers import events
from handlers.context import Services
from handlers.schema import InvalidEventError
from storage.models import Event
from storage.repositories import StaleCaseError
from storage.repositories.events import EVENTS_TOPIC

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
YIELD_S = 0.01


@dataclass
class EventProcessor:
    svc: Services
    metrics: Metrics
    batch: int = 100

    async def run(self) -> None:
        poll_s = self.svc.settings.dispatch.poll_s
        await forever("event processor", self.run_once, self.svc.coord, EVENTS_TOPIC, poll_s)

    async def run_once(self) -> int:
        async with self.svc.tx() as tx:
            claimed = await tx.events.claim(
                now=tx.now, limit=self.batch, lease_s=self.svc.settings.dispatch.lease_s
            )
        for event in claimed:
            await self.apply(event)
            if self.svc.db.busy():
                # Let a burst of inbound events be accepted first; they are processed after.
                await asyncio.sleep(YIELD_S)
        return len(claimed)

    async def apply(self, event: Event) -> None:
        try:
            async with self.svc.tx() as tx:
                current = await tx.events.lock_pending(event.seq)
                if current is None:
                    return  # applied by another instance after our lease ran out
                handled = await events.apply(tx, current)
                await tx.events.processed(current, now=tx.now)
            self.metrics.events_applied.labels(event.type, "applied" if handled else "stored").inc()
        except Exception as exc:
            # A stale case or a refund not known yet (its request still on the way, or on
            # another instance) is retried; an event that no longer parses never will be.
            final = isinstance(exc, InvalidEventError) or event.attempts + 1 >= MAX_ATTEMPTS
            if not isinstance(exc, StaleCaseError | UserError):
                log.exception("event %s (%s) failed", event.id, event.type)
            else:
                log.warning("event %s (%s): %s", event.id, event.type, exc)
            async with self.svc.tx() as tx:
                await tx.events.retry(
                    event,
                    error=f"{type(exc).__name__}: {exc}",
                    at=tx.now + timedelta(seconds=2**event.attempts),
                    give_up=final,
                )
            self.metrics.events_applied.labels(event.type, "failed" if final else "retry").inc()

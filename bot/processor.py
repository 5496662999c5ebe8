"""The event processor: applies stored events in arrival order, one transaction each.

An event about a refund whose request has not arrived yet (a cancellation sent before the
request, a buyer message racing it) waits for it, keyed on the refund id, for up to
`[ingest] wait_for_case_h`: the request's arrival makes it due at once, and it is looked
at again now and then meanwhile. Any other failure is retried `MAX_ATTEMPTS` times. An
event that finally fails, for whatever reason, is reported to the admin group.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.metrics import Metrics
from bot.services import BotServices
from bot.worker import forever
from handlers import events
from handlers.context import Tx
from handlers.errors import MissingRefundError, UserError
from handlers.schema import InvalidEventError
from storage.enums import CaseKind
from storage.models import Event
from storage.repositories import StaleCaseError
from storage.repositories.events import EVENTS_TOPIC

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
YIELD_S = 0.01
# While waiting for its refund an event is looked at again after as long as it has waited
# (at least this, at most the cap): the refund's arrival normally wakes it at once.
WAIT_RECHECK_MIN = timedelta(seconds=2)
WAIT_RECHECK_MAX = timedelta(minutes=10)


@dataclass
class EventProcessor:
    svc: BotServices
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
        except MissingRefundError as exc:
            await self._wait(event, exc)
        except Exception as exc:
            # A stale case is retried; an event that no longer parses never will be.
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
                if final:
                    await self._report(tx, event, _why(exc, event.attempts))
            self.metrics.events_applied.labels(event.type, "failed" if final else "retry").inc()

    async def _wait(self, event: Event, exc: MissingRefundError) -> None:
        hours = self.svc.settings.ingest.wait_for_case_h
        async with self.svc.tx() as tx:
            deadline = event.received_at + timedelta(hours=hours)
            if tx.now >= deadline:
                log.warning("event %s (%s): refund never arrived", event.id, event.type)
                await tx.events.retry(event, error=str(exc), at=tx.now, give_up=True)
                why = f"等了 {hours:g} 小时仍未收到退款 {exc.refund_id}"
                await self._report(tx, event, why)
                failed = True
            else:
                recheck = min(max(tx.now - event.received_at, WAIT_RECHECK_MIN), WAIT_RECHECK_MAX)
                # Its request may have been applied since we looked: then it is due at once.
                arrived = await tx.cases.by_case_id(CaseKind.REFUND, exc.refund_id) is not None
                until = tx.now if arrived else min(tx.now + recheck, deadline)
                await tx.events.wait(event, waits_for=exc.refund_id, until=until, error=str(exc))
                failed = False
        self.metrics.events_applied.labels(event.type, "failed" if failed else "waiting").inc()

    async def _report(self, tx: Tx, event: Event, why: str) -> None:
        """One line to the admin group: the event, its type and why, nothing of its content."""
        await tx.post(
            tx.svc.admin_group,
            f"⚠ 事件 {event.id}（{event.type}）处理失败，已放弃：{why}。请核对后由发送方重新发送",
            key=f"event_failed:{event.seq}",
        )


def _why(exc: Exception, attempts: int) -> str:
    if isinstance(exc, InvalidEventError):
        fields = "、".join(sorted({e["field"] for e in exc.errors}))
        return f"数据无效（{fields}）"
    if isinstance(exc, UserError):
        return f"重试 {attempts + 1} 次仍失败（{exc.message}）"
    return f"重试 {attempts + 1} 次仍失败（{type(exc).__name__}）"

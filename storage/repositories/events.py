"""Inbound events: stored once by id, then claimed in arrival order by the event processor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import EventStatus
from storage.models import Event, Json
from storage.repositories.queue import claim, insert_once, wake

EVENTS_TOPIC = "events"


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        event_id: str,
        type: str,
        shop: str,
        platform: str,
        occurred_at: datetime,
        body: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Store an event; False when an event with this id was stored before."""
        new = await insert_once(
            self.session,
            Event,
            {
                "id": event_id,
                "type": type,
                "shop": shop,
                "platform": platform,
                "occurred_at": occurred_at,
                "received_at": now,
                "next_attempt_at": now,
                "body": body,
                "state": EventStatus.PENDING.value,
                "attempts": 0,
                "error": "",
            },
        )
        if new:
            wake(self.session, EVENTS_TOPIC)
        return new

    async def add_many(self, rows: list[dict[str, Any]], *, now: datetime) -> set[str]:
        """Store events in one statement; the ids that were new (the rest existed already).

        Each row has id, type, shop, platform, occurred_at and body; ids should be unique.
        """
        if not rows:
            return set()
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(Event).on_conflict_do_nothing().returning(Event.id)
        # Sorted by id: two instances inserting overlapping ids lock them in the same order,
        # so PostgreSQL never sees a deadlock between their unique-index checks.
        values = [
            row
            | {
                "received_at": now,
                "next_attempt_at": now,
                "state": EventStatus.PENDING.value,
                "attempts": 0,
                "error": "",
            }
            for row in sorted(rows, key=lambda r: str(r["id"]))
        ]
        new = set((await self.session.scalars(stmt, values)).all())
        if new:
            wake(self.session, EVENTS_TOPIC)
        return new

    async def get(self, event_id: str) -> Event | None:
        return await self.session.scalar(select(Event).where(Event.id == event_id))

    async def claim(self, *, now: datetime, limit: int, lease_s: float) -> list[Event]:
        return await claim(
            self.session,
            Event,
            due=Event.next_attempt_at,
            order=Event.seq,
            now=now,
            limit=limit,
            lease_s=lease_s,
        )

    async def lock_pending(self, seq: int) -> Event | None:
        """The event, row-locked, while it is still pending: once a lease has run out another
        instance may have claimed and applied it meanwhile."""
        return await self.session.scalar(
            select(Event)
            .where(Event.seq == seq, Event.state == EventStatus.PENDING.value)
            .with_for_update()
        )

    async def processed(self, event: Event, *, now: datetime) -> None:
        event.state = EventStatus.PROCESSED.value
        event.processed_at = now
        event.lease_until = None
        self.session.add(event)

    async def retry(self, event: Event, *, error: str, at: datetime, give_up: bool) -> None:
        event.attempts += 1
        event.error = error[:2000]
        event.lease_until = None
        if give_up:
            event.state = EventStatus.FAILED.value
        else:
            event.next_attempt_at = at
        self.session.add(event)

    async def wait(self, event: Event, *, waits_for: str, until: datetime, error: str) -> None:
        """Put `event` aside until `until` or until `waits_for` arrives; no attempt is spent."""
        event.waits_for = waits_for
        event.error = error[:2000]
        event.lease_until = None
        event.next_attempt_at = until
        self.session.add(event)

    async def waiting(self, waits_for: str) -> list[tuple[str, Json]]:
        """(type, body) of the pending events put aside until `waits_for` arrives, oldest first."""
        rows = await self.session.execute(
            select(Event.type, Event.body)
            .where(Event.waits_for == waits_for, Event.state == EventStatus.PENDING.value)
            .order_by(Event.seq)
        )
        return [(type_, body) for type_, body in rows]

    async def rearm(self, waits_for: str, *, now: datetime) -> None:
        """Make every event waiting for `waits_for` due now (it has arrived)."""
        result = await self.session.execute(
            update(Event)
            .where(Event.waits_for == waits_for, Event.state == EventStatus.PENDING.value)
            .values(next_attempt_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            wake(self.session, EVENTS_TOPIC)

    async def pending_count(self) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(Event.state == EventStatus.PENDING.value)
            )
            or 0
        )

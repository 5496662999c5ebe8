"""Durable timers: scheduled under deterministic ids, claimed when due, fired exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import TimerState
from storage.models import Timer
from storage.repositories.queue import claim, insert_once, wake

TIMERS_TOPIC = "timers"


class TimerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def schedule(
        self,
        timer_id: str,
        kind: str,
        *,
        due_at: datetime,
        now: datetime,
        case_pk: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        new = await insert_once(
            self.session,
            Timer,
            {
                "id": timer_id,
                "kind": kind,
                "case_pk": case_pk,
                "due_at": due_at,
                "state": TimerState.PENDING.value,
                "payload": payload or {},
                "created_at": now,
            },
        )
        if new:
            wake(self.session, TIMERS_TOPIC)
        return new

    async def cancel(self, case_pk: int, kinds: Iterable[str] | None = None) -> int:
        stmt = update(Timer).where(
            Timer.case_pk == case_pk, Timer.state == TimerState.PENDING.value
        )
        if kinds is not None:
            stmt = stmt.where(Timer.kind.in_(list(kinds)))
        result = await self.session.execute(stmt.values(state=TimerState.CANCELLED.value))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def revive(self, case_pk: int, kinds: Iterable[str], *, due_after: datetime) -> int:
        """Put back the cancelled timers of `kinds` that were still to come at `due_after`."""
        result = await self.session.execute(
            update(Timer)
            .where(
                Timer.case_pk == case_pk,
                Timer.state == TimerState.CANCELLED.value,
                Timer.kind.in_(list(kinds)),
                Timer.due_at > due_after,
            )
            .values(state=TimerState.PENDING.value, lease_until=None)
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        if count:
            wake(self.session, TIMERS_TOPIC)
        return count

    async def claim(self, *, now: datetime, limit: int, lease_s: float) -> list[Timer]:
        return await claim(
            self.session,
            Timer,
            due=Timer.due_at,
            order=Timer.due_at,
            now=now,
            limit=limit,
            lease_s=lease_s,
        )

    async def fired(self, timer: Timer, *, now: datetime) -> bool:
        """Mark fired if still pending (it may have been cancelled meanwhile)."""
        result = await self.session.execute(
            update(Timer)
            .where(Timer.id == timer.id, Timer.state == TimerState.PENDING.value)
            .values(state=TimerState.FIRED.value, fired_at=now, lease_until=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, timer: Timer) -> None:
        await self.session.execute(
            update(Timer).where(Timer.id == timer.id).values(lease_until=None)
        )

    async def pending_for_case(self, case_pk: int) -> list[Timer]:
        return list(
            (
                await self.session.scalars(
                    select(Timer)
                    .where(Timer.case_pk == case_pk, Timer.state == TimerState.PENDING.value)
                    .order_by(Timer.due_at)
                )
            ).all()
        )

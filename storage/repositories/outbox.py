"""The transactional outbox: items are added beside the change that causes them, drained later."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import OutboxState
from storage.models import OutboxItem
from storage.repositories.queue import claim, insert_once, wake

OUTBOX_TOPIC = "outbox"


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        item_id: str,
        kind: str,
        *,
        now: datetime,
        case_pk: int | None = None,
        group_id: str = "",
        payload: dict[str, Any] | None = None,
        not_before: datetime | None = None,
    ) -> bool:
        """Add an item under a deterministic id; adding the same id again is a no-op."""
        new = await insert_once(
            self.session,
            OutboxItem,
            {
                "id": item_id,
                "kind": kind,
                "case_pk": case_pk,
                "group_id": group_id,
                "payload": payload or {},
                "state": OutboxState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": not_before or now,
                "created_at": now,
                "last_error": "",
            },
        )
        if new:
            wake(self.session, OUTBOX_TOPIC)
        return new

    async def get(self, item_id: str) -> OutboxItem | None:
        return await self.session.get(OutboxItem, item_id, populate_existing=True)

    async def claim(
        self, *, now: datetime, limit: int, lease_s: float, skip_groups: Collection[str] = ()
    ) -> list[OutboxItem]:
        """Lease due items, leaving those for `skip_groups` to the instance that serves them."""
        return await claim(
            self.session,
            OutboxItem,
            due=OutboxItem.next_attempt_at,
            order=OutboxItem.next_attempt_at,
            now=now,
            limit=limit,
            lease_s=lease_s,
            where=[OutboxItem.group_id.not_in(list(skip_groups))] if skip_groups else [],
        )

    async def done(self, item_id: str, *, now: datetime) -> None:
        await self.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(state=OutboxState.DONE.value, done_at=now, lease_until=None)
        )

    async def retry(self, item_id: str, *, error: str, at: datetime) -> None:
        await self.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(
                attempts=OutboxItem.attempts + 1,
                last_error=error[:2000],
                next_attempt_at=at,
                lease_until=None,
            )
        )

    async def defer(self, item_id: str, *, at: datetime) -> None:
        """Put an item back for later without counting an attempt (throttled, not failed)."""
        await self.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(next_attempt_at=at, lease_until=None)
        )

    async def defer_waiting(self, group_id: str, kind: str, *, at: datetime, now: datetime) -> None:
        """Put every unleased `kind` item for a group that is due before `at` back until `at`."""
        await self.session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.group_id == group_id,
                OutboxItem.kind == kind,
                OutboxItem.state == OutboxState.PENDING.value,
                OutboxItem.next_attempt_at < at,
                or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until < now),
            )
            .values(next_attempt_at=at)
        )

    async def dead(self, item_id: str, *, error: str, now: datetime) -> None:
        await self.session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(
                state=OutboxState.DEAD.value,
                attempts=OutboxItem.attempts + 1,
                last_error=error[:2000],
                done_at=now,
                lease_until=None,
            )
        )

    async def requeue_dead(
        self, kinds: Collection[str], *, since: datetime | None, now: datetime
    ) -> int:
        """Put dead items of `kinds` (dead-lettered at or after `since`) back as new: due now,
        no attempts spent. The number put back."""
        stmt = update(OutboxItem).where(
            OutboxItem.state == OutboxState.DEAD.value, OutboxItem.kind.in_(list(kinds))
        )
        if since is not None:
            stmt = stmt.where(OutboxItem.done_at >= since)
        result = await self.session.execute(
            stmt.values(
                state=OutboxState.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                done_at=None,
            )
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
        if count:
            wake(self.session, OUTBOX_TOPIC)
        return count

    async def dead_counts(self, *, since: datetime | None) -> dict[str, int]:
        """Dead items by kind (dead-lettered at or after `since`)."""
        stmt = select(OutboxItem.kind, func.count()).where(
            OutboxItem.state == OutboxState.DEAD.value
        )
        if since is not None:
            stmt = stmt.where(OutboxItem.done_at >= since)
        rows = await self.session.execute(stmt.group_by(OutboxItem.kind))
        return {str(kind): int(n) for kind, n in rows.all()}

    async def withdraw(self, item_id: str) -> bool:
        """Take back an item no dispatcher has ever claimed: compare-and-set on the row, so an
        item claimed (leased), tried, performed or dead-lettered stays; True when it is gone.

        A claim leases the row before it performs anything and keeps the lease until it
        records the end (a throttled item is put back unleased, never tried; a failed or
        dead-lettered one keeps its error, even when sent again); on PostgreSQL the claim's
        row lock makes this delete wait and then see the lease.
        """
        result = await self.session.execute(
            delete(OutboxItem)
            .where(
                OutboxItem.id == item_id,
                OutboxItem.state == OutboxState.PENDING.value,
                OutboxItem.attempts == 0,
                OutboxItem.last_error == "",
                OutboxItem.lease_until.is_(None),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def is_pending(self, item_id: str) -> bool:
        state = await self.session.scalar(select(OutboxItem.state).where(OutboxItem.id == item_id))
        return state == OutboxState.PENDING.value

    async def pending_for_case(self, case_pk: int, kind: str) -> list[OutboxItem]:
        return list(
            (
                await self.session.scalars(
                    select(OutboxItem).where(
                        OutboxItem.case_pk == case_pk,
                        OutboxItem.kind == kind,
                        OutboxItem.state == OutboxState.PENDING.value,
                    )
                )
            ).all()
        )

    async def pending_for_group(self, group_id: str, kind: str, *, limit: int) -> list[OutboxItem]:
        return list(
            (
                await self.session.scalars(
                    select(OutboxItem)
                    .where(
                        OutboxItem.group_id == group_id,
                        OutboxItem.kind == kind,
                        OutboxItem.state == OutboxState.PENDING.value,
                    )
                    .order_by(OutboxItem.created_at, OutboxItem.id)
                    .limit(limit)
                )
            ).all()
        )

    async def depth(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(OutboxItem.state, func.count())
            .where(OutboxItem.state != OutboxState.DONE.value)
            .group_by(OutboxItem.state)
        )
        return {str(state): int(n) for state, n in rows.all()}

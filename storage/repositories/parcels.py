"""Parcels: one row per carrier + tracking number, locked while a scan or an event changes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Parcel
from storage.repositories.queue import insert_once


class ParcelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, carrier: str, tracking_no: str, *, lock: bool = False) -> Parcel | None:
        stmt = select(Parcel).where(Parcel.carrier == carrier, Parcel.tracking_no == tracking_no)
        if lock:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt.execution_options(populate_existing=True))

    async def ensure(
        self, carrier: str, tracking_no: str, *, status: str, at: datetime, now: datetime
    ) -> tuple[Parcel, bool]:
        """The parcel, locked for this transaction, created first if new; True when created."""
        created = await insert_once(
            self.session,
            Parcel,
            {
                "carrier": carrier,
                "tracking_no": tracking_no,
                "order_id": "",
                "shop": "",
                "platform": "",
                "status": status,
                "description": "",
                "source": "event",
                "last_event_at": at,
                "flags": {},
                "anomalies": {},
                "scans": [],
                "created_at": now,
                "updated_at": now,
            },
        )
        parcel = await self.get(carrier, tracking_no, lock=True)
        assert parcel is not None
        return parcel, created

    async def due(self, now: datetime, limit: int) -> list[Parcel]:
        """Parcels whose next check has come, oldest first; rows another instance holds are skipped."""
        stmt = (
            select(Parcel)
            .where(Parcel.next_check_at <= now)
            .order_by(Parcel.next_check_at, Parcel.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def earliest_check(self) -> datetime | None:
        result: datetime | None = await self.session.scalar(select(func.min(Parcel.next_check_at)))
        return result

    async def for_order(self, order_id: str) -> list[Parcel]:
        """Parcels of an order, newest scan first."""
        if not order_id:
            return []
        stmt = (
            select(Parcel)
            .where(Parcel.order_id == order_id)
            .order_by(Parcel.last_event_at.desc(), Parcel.id.desc())
        )
        return list((await self.session.scalars(stmt)).all())

"""Named leases in the database: one holder at a time, until it stops renewing.

Taking a lease is one insert-or-conditional-update, so two instances racing for it on
PostgreSQL (row lock, re-checked WHERE) or SQLite (one writer) never both get it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Lease
from storage.repositories.queue import insert_once


class LeaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take(self, name: str, holder: str, *, now: datetime, ttl_s: float) -> bool:
        """Take `name` (free, expired, or already ours) until now + `ttl_s`; True when held."""
        until = now + timedelta(seconds=ttl_s)
        if await insert_once(
            self.session, Lease, {"name": name, "holder": holder, "expires_at": until}
        ):
            return True
        result = await self.session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
            .values(holder=holder, expires_at=until)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, name: str, holder: str) -> None:
        """Give `name` up now, if it is still ours."""
        await self.session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

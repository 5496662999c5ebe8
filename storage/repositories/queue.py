"""Shared pieces of the table-backed queues (events, outbox, timers): insert-once and claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.base import Base

M = TypeVar("M", bound=Base)


def wake(session: AsyncSession, topic: str) -> None:
    """Ask `Database.begin` to notify `topic` once this transaction has committed."""
    session.info.setdefault("wake", set()).add(topic)


async def insert_once(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> bool:
    """INSERT unless the primary or a unique key exists; True when the row is new."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim(
    session: AsyncSession,
    model: type[M],
    *,
    due: InstrumentedAttribute[datetime],
    order: InstrumentedAttribute[Any],
    now: datetime,
    limit: int,
    lease_s: float,
    where: Sequence[ColumnElement[bool]] = (),
) -> list[M]:
    """Lease up to `limit` due, pending rows; other instances skip them until the lease ends.

    On PostgreSQL the rows are locked with SKIP LOCKED while the lease is written, so two
    instances never claim the same row; SQLite has one writer at a time anyway.
    """
    state = model.state  # type: ignore[attr-defined]
    lease = model.lease_until  # type: ignore[attr-defined]
    stmt = (
        select(model)
        .where(state == "pending", due <= now, or_(lease.is_(None), lease < now), *where)
        .order_by(order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.scalars(stmt)).all())
    until = now + timedelta(seconds=lease_s)
    for row in rows:
        row.lease_until = until  # type: ignore[attr-defined]
    return rows

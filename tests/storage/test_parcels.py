"""The parcels table: due parcels are claimed without overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.repositories import ParcelRepository
from tests.support.db import truncate

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_ensure_creates_once_and_due_orders_by_next_check(db: Database) -> None:
    async with db.begin() as session:
        repo = ParcelRepository(session)
        first, created = await repo.ensure("SF", "SF1", status="created", at=T0, now=T0)
        again, created_again = await repo.ensure("SF", "SF1", status="in_transit", at=T0, now=T0)
        assert (created, created_again) == (True, False)
        assert again.id == first.id
        assert again.status == "created"
        for n, hours in ((2, 5), (3, 1), (4, 30)):
            parcel, _ = await repo.ensure("SF", f"SF{n}", status="in_transit", at=T0, now=T0)
            parcel.next_check_at = T0 + timedelta(hours=hours)
        first.order_id = "T1"
    async with db.begin() as session:
        repo = ParcelRepository(session)
        due = await repo.due(T0 + timedelta(hours=6), limit=10)
        assert [p.tracking_no for p in due] == ["SF3", "SF2"]
        assert await repo.earliest_check() == T0 + timedelta(hours=1)
        assert [p.tracking_no for p in await repo.for_order("T1")] == ["SF1"]
        assert await repo.for_order("") == []


@pytest.mark.postgres
async def test_an_instance_skips_parcels_another_one_is_checking(pg_url: str) -> None:
    await truncate(pg_url)
    db, other = Database(pg_url), Database(pg_url)
    try:
        async with db.begin() as session:
            repo = ParcelRepository(session)
            for n in range(3):
                parcel, _ = await repo.ensure("SF", f"L{n}", status="in_transit", at=T0, now=T0)
                parcel.next_check_at = T0
        async with db.begin() as mine:
            held = await ParcelRepository(mine).due(T0, limit=2)
            async with other.begin() as theirs:
                rest = await ParcelRepository(theirs).due(T0, limit=10)
        assert len(held) == 2
        assert {p.tracking_no for p in held} | {p.tracking_no for p in rest} == {"L0", "L1", "L2"}
        assert not {p.tracking_no for p in held} & {p.tracking_no for p in rest}
    finally:
        await db.dispose()
        await other.dispose()

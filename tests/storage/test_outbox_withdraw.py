"""An undo takes back an outbox item only while no dispatcher ever claimed it: compare-and-set
on the row, so a leased, tried or counted item stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories import OutboxRepository

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_outbox_gives_back_only_an_item_never_claimed(db: Database) -> None:
    async with db.begin() as s:
        outbox = OutboxRepository(s)
        for name in ("fresh", "claimed", "tried", "deferred"):
            await outbox.add(name, "commerce.approve_refund", now=NOW)
    async with db.begin() as s:
        outbox = OutboxRepository(s)
        claimed = await outbox.claim(now=NOW, limit=10, lease_s=60)
        assert {i.id for i in claimed} == {"fresh", "claimed", "tried", "deferred"}
        await outbox.retry("tried", error="timeout", at=NOW)
        await outbox.defer("deferred", at=NOW + timedelta(seconds=5))
        await outbox.defer("fresh", at=NOW)
        await outbox.retry("fresh", error="", at=NOW)
    async with db.begin() as s:
        outbox = OutboxRepository(s)
        assert not await outbox.withdraw("claimed"), "leased: a dispatcher may be calling now"
        assert not await outbox.withdraw("tried"), "tried once: it may have reached the shop"
        assert not await outbox.withdraw("fresh"), "an attempt was counted"
        assert await outbox.withdraw("deferred"), "throttled before it was ever sent"
        assert not await outbox.withdraw("deferred"), "gone"
        assert not await outbox.withdraw("missing")

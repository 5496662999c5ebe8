"""Repositories on SQLite and PostgreSQL: handles, compare-and-set, queues, timers, dedup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.enums import CaseKind
from storage.repositories import (
    CaseRepository,
    EventRepository,
    OutboxRepository,
    StaleCaseError,
    TimerRepository,
)
from storage.repositories.connector_state import ConnectorStateRepository

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def new_case(db: Database, kind: CaseKind = CaseKind.REFUND, case_id: str = "RF1") -> int:
    async with db.begin() as s:
        case = await CaseRepository(s).create(kind=kind, case_id=case_id, state="new", now=NOW)
        return case.id


async def test_handles_are_short_per_kind_and_unique(db: Database) -> None:
    async with db.begin() as s:
        repo = CaseRepository(s)
        made = [
            await repo.create(kind=kind, case_id=f"{kind}-{i}", state="new", now=NOW)
            for i, kind in enumerate(
                [CaseKind.REFUND, CaseKind.REFUND, CaseKind.PAYOUT, CaseKind.INTERCEPT]
            )
        ]
    assert [c.handle for c in made] == ["R1", "R2", "P1", "X1"]
    async with db.begin() as s:
        repo = CaseRepository(s)
        found = await repo.find("r2")
        assert found is not None
        assert found.case_id == "refund-1"
        by_id = await repo.find("payout-2")
        assert by_id is not None
        assert by_id.handle == "P1"
        assert await repo.find("R99") is None


async def test_concurrent_case_creation_never_repeats_a_handle(db: Database) -> None:
    async def create(i: int) -> str:
        async with db.begin() as s:
            case = await CaseRepository(s).create(
                kind=CaseKind.REFUND, case_id=f"c{i}", state="new", now=NOW
            )
            return case.handle

    handles = await asyncio.gather(*(create(i) for i in range(20)))
    assert sorted(handles, key=lambda h: int(h[1:])) == [f"R{i}" for i in range(1, 21)]


async def test_transition_is_compare_and_set(db: Database) -> None:
    pk = await new_case(db)
    async with db.begin() as s:
        stale = await CaseRepository(s).get(pk)
    assert stale is not None
    async with db.begin() as s:
        repo = CaseRepository(s)
        fresh = await repo.get(pk)
        assert fresh is not None
        await repo.transition(fresh, "awaiting_review", now=NOW, last_actor="rule:x")
        assert (fresh.state, fresh.version) == ("awaiting_review", 2)
    with pytest.raises(StaleCaseError):
        async with db.begin() as s:
            await CaseRepository(s).transition(stale, "approved", now=NOW)
    async with db.begin() as s:
        current = await CaseRepository(s).get(pk)
        assert current is not None
        assert (current.state, current.version) == ("awaiting_review", 2)


async def test_timestamps_come_back_aware_utc(db: Database) -> None:
    pk = await new_case(db)
    async with db.begin() as s:
        case = await CaseRepository(s).get(pk)
        assert case is not None
        assert case.created_at == NOW
        assert case.created_at.tzinfo is not None


async def test_events_dedup_by_id_and_claim_in_order(db: Database) -> None:
    async with db.begin() as s:
        repo = EventRepository(s)
        added = [
            await repo.add(
                event_id=i,
                type="refund.requested",
                shop="s",
                platform="p",
                occurred_at=NOW,
                body={"n": i},
                now=NOW,
            )
            for i in ("e1", "e2", "e1", "e3")
        ]
    assert added == [True, True, False, True]
    async with db.begin() as s:
        first = await EventRepository(s).claim(now=NOW, limit=2, lease_s=60)
    async with db.begin() as s:
        second = await EventRepository(s).claim(now=NOW, limit=5, lease_s=60)
    assert [e.id for e in first] == ["e1", "e2"]
    assert [e.id for e in second] == ["e3"]
    async with db.begin() as s:
        after_lease = await EventRepository(s).claim(
            now=NOW + timedelta(seconds=61), limit=5, lease_s=60
        )
    assert sorted(e.id for e in after_lease) == ["e1", "e2", "e3"]


async def test_outbox_add_is_idempotent_and_claims_do_not_overlap(db: Database) -> None:
    async with db.begin() as s:
        repo = OutboxRepository(s)
        assert await repo.add("card:1:1", "card", now=NOW)
        assert not await repo.add("card:1:1", "card", now=NOW)
        for i in range(2, 11):
            await repo.add(f"card:{i}:1", "card", now=NOW)
        await repo.add("later", "text", now=NOW, not_before=NOW + timedelta(minutes=5))

    async def claim() -> list[str]:
        async with db.begin() as s:
            return [i.id for i in await OutboxRepository(s).claim(now=NOW, limit=4, lease_s=30)]

    batches = await asyncio.gather(*(claim() for _ in range(4)))
    claimed = [i for b in batches for i in b]
    assert len(claimed) == len(set(claimed)) == 10
    assert "later" not in claimed
    async with db.begin() as s:
        repo = OutboxRepository(s)
        await repo.done("card:1:1", now=NOW)
        await repo.retry("card:2:1", error="boom", at=NOW + timedelta(seconds=10))
        await repo.dead("card:3:1", error="gone", now=NOW)
        assert await repo.depth() == {"pending": 9, "dead": 1}
        retried = await repo.get("card:2:1")
        assert retried is not None
        assert retried.attempts == 1
        assert retried.last_error == "boom"


async def test_timers_fire_once_and_cancel(db: Database) -> None:
    pk = await new_case(db)
    async with db.begin() as s:
        repo = TimerRepository(s)
        assert await repo.schedule(
            "first_response:1", "first_response", due_at=NOW, now=NOW, case_pk=pk
        )
        assert not await repo.schedule(
            "first_response:1", "first_response", due_at=NOW, now=NOW, case_pk=pk
        )
        await repo.schedule("deadline:1", "deadline_warn", due_at=NOW, now=NOW, case_pk=pk)
        await repo.schedule(
            "future:1", "approval", due_at=NOW + timedelta(hours=1), now=NOW, case_pk=pk
        )
    async with db.begin() as s:
        repo = TimerRepository(s)
        due = await repo.claim(now=NOW, limit=10, lease_s=60)
        assert sorted(t.id for t in due) == ["deadline:1", "first_response:1"]
        assert await repo.cancel(pk, ["deadline_warn"]) == 1
        fired = [await repo.fired(t, now=NOW) for t in sorted(due, key=lambda t: t.id)]
    assert fired == [False, True]
    async with db.begin() as s:
        repo = TimerRepository(s)
        (first,) = [t for t in due if t.id == "first_response:1"]
        assert not await repo.fired(first, now=NOW)
        assert [t.id for t in await repo.pending_for_case(pk)] == ["future:1"]


async def test_connector_state_is_written_whole_and_read_back(db: Database) -> None:
    async with db.begin() as s:
        repo = ConnectorStateRepository(s)
        assert await repo.get("cursor:dy") is None
        await repo.put("cursor:dy", {"cursor": '{"start": 1, "page": 0}'}, now=NOW)
        await repo.put("tokens:dy", {"access_token": "a", "expires_at": None}, now=NOW)
    async with db.begin() as s:
        repo = ConnectorStateRepository(s)
        await repo.put("cursor:dy", {"cursor": '{"start": 2, "page": 3}', "fetched": 5}, now=NOW)
    async with db.begin() as s:
        repo = ConnectorStateRepository(s)
        assert await repo.get("cursor:dy") == {"cursor": '{"start": 2, "page": 3}', "fetched": 5}
        assert await repo.get("tokens:dy") == {"access_token": "a", "expires_at": None}

"""One bad event never fails another sender's: concurrent requests share a group commit, and
an event the database cannot hold is refused alone (400 naming the field) while the other
39 are stored and applied."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.routes import ingest
from handlers.clock import FakeClock
from handlers.schema import Envelope, Inbound, parse_event
from storage.models import Case, Event
from storage.repositories.events import EventRepository
from tests.support.app import Bot, BotFactory, make_refund, make_settings

VALID = 39


async def count(bot: Bot, model: type[Event] | type[Case]) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(model)))


async def send_all(bot: Bot, events: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """POST every event at once, each its own request: they meet in one group commit."""

    async def one(event: dict[str, Any]) -> tuple[int, Any]:
        body = json.dumps(event).encode()  # \u escapes: a lone surrogate goes on the wire
        resp = await bot.client.post("/api/v1/events", data=body, headers=bot.headers(body))
        return resp.status, await resp.json()

    return list(await asyncio.gather(*(one(e) for e in events)))


@pytest.fixture
async def db_bot(make_bot: BotFactory, db_url: str) -> Bot:
    return await make_bot(make_settings(db_url))


@pytest.mark.parametrize(
    ("poison", "field"),
    [
        (lambda e: e.update(id="evt_nul\x00"), "id"),
        (lambda e: e.update(occurred_at="0001-01-01T00:00:00+08:00"), "occurred_at"),
        (lambda e: e.update(occurred_at="9999-12-31T23:00:00-08:00"), "occurred_at"),
        (lambda e: e["data"].update(deadline_at="0001-01-01T05:00:00+08:00"), "data.deadline_at"),
        (lambda e: e["data"].update(reason="尺码\x00不合适"), "data.reason"),
        (lambda e: e["data"].update(seller_note="退\ud800"), "data.seller_note"),
        (lambda e: e.update(vendor={"raw": [{"note\x00": "x"}]}), "vendor.raw[0].note\\u0000"),
    ],
)
async def test_event_storage_cannot_hold_is_refused_alone(
    db_bot: Bot, poison: Any, field: str
) -> None:
    valid = [make_refund() for _ in range(VALID)]
    bad = make_refund()
    poison(bad)
    answers = await send_all(db_bot, [*valid[:20], bad, *valid[20:]])
    status, answer = answers[20]
    assert status == 400, answer
    assert field in [f["field"] for f in answer["fields"]], answer
    assert [s for s, _ in answers[:20] + answers[21:]] == [202] * VALID
    assert await count(db_bot, Event) == VALID


async def test_a_poison_that_slips_past_validation_fails_only_its_own_request(
    db_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation is one defence; the group commit isolates even what validation misses."""
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8)))

    def lenient(raw: Any, prefix: str = "", *, storable: bool = False) -> tuple[Envelope, Inbound]:
        if raw.get("id") == "evt_poison":
            fields = {**raw, "occurred_at": year_one}
            envelope = Envelope.model_construct(**fields)
            return envelope, envelope
        return parse_event(raw, prefix, storable=storable)

    monkeypatch.setattr(ingest, "parse_event", lenient)
    valid = [make_refund() for _ in range(VALID)]
    answers = await send_all(db_bot, [*valid[:7], make_refund(id="evt_poison"), *valid[7:]])
    status, answer = answers[7]
    assert status == 400, answer
    assert "cannot store" in answer["fields"][0]["message"]
    assert [s for s, _ in answers[:7] + answers[8:]] == [202] * VALID
    assert {a["status"] for _, a in answers[:7] + answers[8:]} == {"accepted"}
    assert await count(db_bot, Event) == VALID
    await db_bot.drain()
    assert await count(db_bot, Case) == VALID


async def test_a_database_outage_is_503_and_stores_nothing(
    bot: Bot, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = EventRepository.add_many

    async def down(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, ConnectionResetError("connection lost"))

    monkeypatch.setattr(EventRepository, "add_many", down)
    answers = await send_all(bot, [make_refund() for _ in range(5)])
    assert [s for s, _ in answers] == [503] * 5
    assert all("again later" in a["error"] for _, a in answers)
    monkeypatch.setattr(EventRepository, "add_many", real)
    clock.advance(timedelta(seconds=5))
    assert [s for s, _ in await send_all(bot, [make_refund() for _ in range(5)])] == [202] * 5

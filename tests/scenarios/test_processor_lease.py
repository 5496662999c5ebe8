"""An event whose lease ran out is applied once, though two processors hold it (found by the chaos test)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from bot.keys import PROCESSOR
from storage.enums import EventStatus
from storage.models import Case, Event
from tests.support.app import BotFactory, make_refund, make_settings


async def test_an_event_taken_over_after_its_lease_is_applied_once(
    make_bot: BotFactory, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot(make_settings(db_url))
    status, _ = await bot.post_event(make_refund(data_refund_id="RFLEASE01"))
    assert status == 202
    async with bot.svc.tx() as tx:
        (slow,) = await tx.events.claim(now=tx.now, limit=10, lease_s=5)
    bot.clock.advance(seconds=6)
    async with bot.svc.tx() as tx:
        (other,) = await tx.events.claim(now=tx.now, limit=10, lease_s=5)
    assert other.seq == slow.seq
    processor = bot.app[PROCESSOR]
    with caplog.at_level(logging.WARNING, logger="bot.processor"):
        await asyncio.gather(processor.apply(other), processor.apply(slow))
    assert caplog.records == []
    async with bot.svc.tx() as tx:
        event = await tx.session.scalar(select(Event).where(Event.seq == slow.seq))
        cases = await tx.session.scalar(select(func.count()).select_from(Case))
    assert event is not None
    assert (event.state, event.attempts, event.error) == (EventStatus.PROCESSED.value, 0, "")
    assert cases == 1

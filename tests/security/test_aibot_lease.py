"""One WeCom AI-bot connection per bot across instances: a database lease picks the one
instance that connects, another takes over when it stops, work arriving elsewhere is left in
the outbox for the holder, and a `disconnected_event` is not answered by reconnecting at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.keys import DISPATCHER
from handlers.clock import FakeClock
from integrations.wecom.aibot import AibotChannel
from integrations.wecom.fake import FakeWeComAIBot
from storage.db import Database
from storage.enums import OutboxState
from storage.models import OutboxItem
from storage.repositories.leases import LeaseRepository
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.fakes import Served, serve
from tests.support.wecom import wecom_settings

CHAT = "wrkAFTERSALES"
LEASE_S = 0.6


@pytest.fixture
async def fake() -> AsyncIterator[Served[FakeWeComAIBot]]:
    bot = FakeWeComAIBot(chats={CHAT})
    async with serve(bot.app()) as base:
        yield Served(bot, base + "/")


class Instance:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        channel = bot.app[DISPATCHER].channels["wecom_aibot"]
        assert isinstance(channel, AibotChannel)
        self.channel = channel
        self.task = asyncio.create_task(channel.run())

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def two_instances(
    make_bot: BotFactory, sqlite_url: str, ws_url: str, reconnect_max_s: float = 0.5
) -> AsyncIterator[list[Instance]]:
    settings = wecom_settings(
        sqlite_url,
        [{"id": "aftersales", "channel": "wecom_aibot", "chat_id": CHAT, "kinds": ["refund"]}],
        wecom={
            "aibot": {
                "ws_url": ws_url,
                "lease_s": LEASE_S,
                "reconnect_base_s": 0.05,
                "reconnect_max_s": reconnect_max_s,
            }
        },
        bot={"admin_group": "aftersales"},
    )
    instances = [Instance(await make_bot(settings)), Instance(await make_bot(settings))]
    try:
        yield instances
    finally:
        for instance in instances:
            await instance.stop()


async def until(check: Callable[[], bool], within: float) -> None:
    """Poll `check` (lease renewals have no event to wait on) until true, or fail."""
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s")


async def holder(instances: list[Instance], fake: FakeWeComAIBot) -> Instance:
    await until(lambda: fake.online and any(i.channel.authenticated.is_set() for i in instances), 5)
    (held,) = [i for i in instances if i.channel.held]
    return held


def serving(instance: Instance) -> bool:
    return instance.channel.held and instance.channel.authenticated.is_set()


async def outbox(bot: Bot) -> list[OutboxItem]:
    async with bot.svc.tx() as tx:
        return list((await tx.session.scalars(select(OutboxItem))).all())


async def test_aibot_two_instances_keep_one_connection_and_hand_work_to_the_holder(
    make_bot: BotFactory, sqlite_url: str, fake: Served[FakeWeComAIBot]
) -> None:
    wecom, ws_url = fake
    async with two_instances(make_bot, sqlite_url, ws_url) as instances:
        first = await holder(instances, wecom)
        await asyncio.sleep(LEASE_S * 3)  # several renewals on both sides
        assert [i.channel.held for i in instances].count(True) == 1
        assert (await holder(instances, wecom)) is first
        assert wecom.subscribed == 1
        assert wecom.kicked == 0

        # A refund arrives on the other instance: its card waits there for the holder.
        other = next(i for i in instances if i is not first)
        status, _ = await other.bot.post_event(make_refund())
        assert status == 202
        await other.bot.drain()
        (card,) = [i for i in await outbox(other.bot) if i.kind == "card"]
        assert (card.state, card.attempts) == (OutboxState.PENDING, 0)
        assert wecom.cards[CHAT] == {}
        await first.bot.drain()
        assert len(wecom.cards[CHAT]) == 1
        await other.bot.drain()
        assert len(wecom.cards[CHAT]) == 1

        # The holder stops: the other one takes the bot over within a renewal or two.
        await first.stop()
        await until(lambda: serving(other), LEASE_S * 3)
        assert wecom.subscribed == 2
        assert wecom.kicked == 0


async def test_aibot_holder_that_cannot_renew_closes_before_another_takes_over(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    fake: Served[FakeWeComAIBot],
) -> None:
    wecom, ws_url = fake
    async with two_instances(make_bot, sqlite_url, ws_url) as instances:
        first = await holder(instances, wecom)
        other = next(i for i in instances if i is not first)
        # The holder's database turns read-only (it hangs, it is cut off): no renewals.
        path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
        writable = first.bot.svc.db
        first.bot.svc.db = Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
        await writable.dispose()
        try:
            await until(lambda: not (first.channel.held or wecom.online), LEASE_S * 3)
            assert not other.channel.held  # the lease has not run out yet
            clock.advance(timedelta(seconds=LEASE_S * 2))
            await until(lambda: serving(other), LEASE_S * 3)
            assert wecom.kicked == 0
        finally:
            await first.stop()
            await first.bot.svc.db.dispose()
            first.bot.svc.db = Database(sqlite_url)


async def test_aibot_disconnected_event_backs_off_instead_of_fighting(
    make_bot: BotFactory,
    sqlite_url: str,
    fake: Served[FakeWeComAIBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wecom, ws_url = fake
    caplog.set_level(logging.WARNING)
    async with two_instances(make_bot, sqlite_url, ws_url, reconnect_max_s=1.5) as instances:
        ours = await holder(instances, wecom)
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as rogue:
            # Another deployment with the same bot id and secret subscribes.
            await rogue.send_json(
                {
                    "cmd": "aibot_subscribe",
                    "headers": {"req_id": "aibot_subscribe_1_x"},
                    "body": {"bot_id": wecom.bot_id, "secret": wecom.secret},
                }
            )
            assert (await rogue.receive_json())["errcode"] == 0
            await until(lambda: ours.channel.kicked == 1, 2)
            assert wecom.kicked == 1
            await asyncio.sleep(0.5)  # well past reconnect_base_s: no fight
            assert wecom.subscribed == 2
            assert wecom.kicked == 1
            assert any("disconnected_event" in r.getMessage() for r in caplog.records)
            # After the full backoff it tries again (and, being the lease holder, wins).
            async with asyncio.timeout(3):
                kicked = await rogue.receive_json()
            assert kicked["cmd"] == "aibot_event_callback"
            assert kicked["body"]["event"] == {"eventtype": "disconnected_event"}


async def test_aibot_lease_has_one_holder_on_either_database(db: Database) -> None:
    now = FakeClock().now()

    async def take(holder: str, at: float) -> bool:
        async with db.begin() as session:
            when = now + timedelta(seconds=at)
            return await LeaseRepository(session).take("bot", holder, now=when, ttl_s=10)

    assert await take("a", 0)
    assert not await take("b", 1)
    assert await take("a", 5)  # renewed until 15
    assert not await take("b", 14)
    assert await take("b", 15)  # ran out: b takes over
    assert not await take("a", 16)
    async with db.begin() as session:
        await LeaseRepository(session).release("bot", "a")  # not a's any more: no effect
    assert not await take("a", 17)
    async with db.begin() as session:
        await LeaseRepository(session).release("bot", "b")
    assert await take("a", 18)

"""A Redis outage loses nothing: outbox items wait without spending attempts and are all
delivered when Redis is back; the wake-up listener reconnects; no stray task errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import worker
from bot.app import create_app
from bot.keys import DISPATCHER, SERVICES
from handlers.clock import FakeClock
from storage.coordination import InProcessCoordination
from storage.enums import OutboxState
from storage.models import OutboxItem
from storage.redis_coordination import RedisCoordination
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.redis_proxy import RedisProxy, redis_proxy

pytestmark = pytest.mark.redis


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    async with redis_proxy(redis_url) as p:
        yield p


async def outbox(bot: Bot) -> list[OutboxItem]:
    async with bot.svc.tx() as tx:
        return list((await tx.session.scalars(select(OutboxItem))).all())


async def test_redis_outage_dead_letters_no_card_and_spends_no_attempt(
    make_bot: BotFactory, sqlite_url: str, proxy: RedisProxy, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        sqlite_url,
        redis={"url": proxy.url},
        dispatch={"max_attempts": 4, "coordination_retry_s": 5.0},
    )
    bot = await make_bot(settings)
    await proxy.cut()
    for _ in range(10):
        status, _ = await bot.post_event(make_refund())
        assert status == 202
    # 150 s of outage, the dispatcher trying all the while.
    for _ in range(30):
        await bot.drain()
        bot.clock.advance(timedelta(seconds=5))
    items = await outbox(bot)
    cards = [i for i in items if i.kind == "card"]
    assert len(cards) == 10
    assert [i for i in items if i.state == OutboxState.DEAD] == []
    assert {i.attempts for i in items} == {0}
    assert await bot.cards() == []
    waits = [r for r in caplog.records if "wait for Redis" in r.getMessage()]
    assert [r.levelname for r in waits if r.levelno >= logging.WARNING] == ["WARNING"]

    proxy.restore()
    bot.clock.advance(timedelta(seconds=5))
    await bot.drain()
    items = await outbox(bot)
    assert {i.state for i in items} == {OutboxState.DONE}
    assert len(await bot.cards()) == 10
    assert await bot.texts("ops") == []  # no dead-letter notice either


async def test_redis_wakeup_listener_reconnects_after_a_blip(
    proxy: RedisProxy, redis_url: str
) -> None:
    here = await RedisCoordination.connect(proxy.url)
    there = await RedisCoordination.connect(redis_url)
    listener = asyncio.create_task(here.listen())
    try:
        await wake_reaches(there, here, within_s=5.0)
        await proxy.cut()
        await asyncio.sleep(1.5)
        proxy.restore()
        await wake_reaches(there, here, within_s=15.0)
        assert not listener.done()
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await here.close()
        await there.close()


async def wake_reaches(
    sender: RedisCoordination, receiver: RedisCoordination, within_s: float
) -> None:
    """A wake-up published on `sender` after now wakes a waiter on `receiver`."""
    deadline = time.monotonic() + within_s
    await receiver.wait("probe", 0.01)  # forget earlier wake-ups
    while time.monotonic() < deadline:
        sender.notify("probe")
        started = time.monotonic()
        await receiver.wait("probe", 0.3)
        if time.monotonic() - started < 0.25:
            return
    raise AssertionError(f"no wake-up reached the other instance within {within_s} s")


async def test_redis_blip_leaves_no_unretrieved_task_errors(
    make_bot: BotFactory,
    sqlite_url: str,
    proxy: RedisProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(sqlite_url, redis={"url": proxy.url})
    bot = await make_bot(settings)
    coord = bot.app[SERVICES].coord
    caplog.set_level(logging.WARNING)
    await proxy.cut()
    for _ in range(20):
        coord.notify("outbox")
        status, _ = await bot.post_event(make_refund())
        assert status == 202
    await bot.drain()
    await asyncio.sleep(0.5)
    proxy.restore()
    gc.collect()
    await asyncio.sleep(0)
    stray = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert stray == []


async def test_redis_outage_never_dead_letters_the_admin_notice(
    make_bot: BotFactory, sqlite_url: str, proxy: RedisProxy
) -> None:
    settings = make_settings(
        sqlite_url,
        redis={"url": proxy.url},
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"]},
            # A sending budget: every line to the admin group takes a token from Redis.
            {"id": "ops", "channel": "sandbox", "max_per_minute": 20},
        ],
    )
    bot = await make_bot(settings)
    status, _ = await bot.post_event(make_refund())
    assert status == 202
    await bot.drain()
    await proxy.cut()
    async with bot.svc.tx() as tx:
        item = await tx.outbox.add("carrier.intercept:x", "carrier.intercept", now=tx.now)
        assert item
    carrier = next(i for i in await outbox(bot) if i.id == "carrier.intercept:x")
    await bot.app[DISPATCHER]._dead(carrier, "the carrier refused")
    for _ in range(30):
        await bot.drain()
        bot.clock.advance(timedelta(seconds=5))
    notice = [i for i in await outbox(bot) if i.group_id == "ops"]
    assert [(i.state, i.attempts) for i in notice] == [(OutboxState.PENDING, 0)]
    proxy.restore()
    bot.clock.advance(timedelta(seconds=5))
    await bot.drain()
    assert [t for t in await bot.texts("ops") if "快递拦截申请" in t]


async def test_redis_blip_under_the_running_app_keeps_every_loop_alive(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    sqlite_url: str,
    proxy: RedisProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        sqlite_url,
        redis={"url": proxy.url},
        dispatch={"poll_s": 0.1, "coordination_retry_s": 0.5},
        timers={"poll_s": 0.1},
    )
    client = await aiohttp_client(create_app(settings))
    coord = client.app[SERVICES].coord
    assert isinstance(coord, RedisCoordination)
    caplog.set_level(logging.WARNING)
    async with asyncio.timeout(5):
        await coord.listening.wait()
    await proxy.cut()
    bot = Bot(client, FakeClock(datetime.now(UTC)))  # signs with the app's real time
    for _ in range(10):
        status, _ = await bot.post_event(make_refund())
        assert status == 202
    await asyncio.sleep(1.0)
    assert not coord.listening.is_set()
    proxy.restore()
    async with asyncio.timeout(10):
        await coord.listening.wait()
    for _ in range(50):  # the loops retry on their own: poll the group until all are shown
        if len(await bot.cards()) == 10:
            break
        await asyncio.sleep(0.2)
    assert len(await bot.cards()) == 10
    gc.collect()
    await asyncio.sleep(0)
    records = [r.getMessage() for r in caplog.records]
    assert not [m for m in records if "never retrieved" in m]
    assert not [m for m in records if "failed; starting it again" in m]


async def test_redis_background_loop_that_fails_is_restarted_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker, "RESTART_BASE_S", 0.01)
    runs: list[int] = []
    steady = asyncio.Event()

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionError("Redis went away")
        steady.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(worker.supervise("listener", loop))
    async with asyncio.timeout(2):
        await steady.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert runs == [0, 1, 2]
    failed = [r for r in caplog.records if "listener failed; starting it again" in r.getMessage()]
    assert len(failed) == 2

    idle = asyncio.create_task(InProcessCoordination().listen())
    await asyncio.sleep(0.05)
    assert not idle.done()  # supervised, an idle listener is not restarted over and over
    idle.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await idle

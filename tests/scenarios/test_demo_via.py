"""`refundops demo --via douyin|taobao`: the simulator's refunds become after-sales of the
in-process platform fake and reach the cards through the real connector code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, unused_port

from bot.app import create_app
from bot.keys import DISPATCHER, FAKE_PLATFORM, HTTP
from bot.shops import TmcRunner
from handlers.clock import FakeClock
from integrations.douyin.fake import FakeDouyin
from integrations.jushuitan.fake import FakeJushuitan
from integrations.simulator.backoffice import WarehouseBridge, demo_overrides, make_fakes
from integrations.simulator.feed import ShopSimulator, SignedSender
from integrations.simulator.platforms import DEMO_SHOP, PlatformBridge, Via, demo_shop
from integrations.taobao.fake import FakeTaobao
from tests.support.app import SECRET, Bot, make_settings

Client = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.mark.parametrize("via", ["douyin", "taobao"])
async def test_the_simulated_shop_reaches_the_cards_through_the_platform(
    via: Via, aiohttp_client: Client, clock: FakeClock, sqlite_url: str
) -> None:
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        sqlite_url,
        simulator={"via": via},
        commerce={"mode": "simulator"},
        shops=[demo_shop(via, base) | {"tmc_pull_s": 0.05}],
    )
    app = create_app(settings, clock=clock, workers=False)
    bot = Bot(await aiohttp_client(app, server_kwargs={"port": port}), clock)
    fake = app[FAKE_PLATFORM]
    assert isinstance(fake, FakeDouyin | FakeTaobao)
    ingest = SignedSender(app[HTTP], base, SECRET, clock)
    shop = DEMO_SHOP[via]
    bridge = PlatformBridge(
        via, fake, ingest, app[HTTP], push_url=f"{base}/connectors/douyin/{shop}"
    )
    sim = ShopSimulator(clock, 11)
    for event in sim.opening():
        await bridge(event)
    if isinstance(fake, FakeTaobao):
        runner = TmcRunner(bot.svc, app[HTTP], list(settings.shops), app[DISPATCHER].shops)
        task = asyncio.create_task(runner.run())
        async with asyncio.timeout(10):
            while len(fake.confirms) < len(fake.refunds):  # noqa: ASYNC110 - the fake only records
                await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await bot.drain()
    cards: list[dict[str, Any]] = await bot.cards()
    from_platform = [c for c in cards if c["case_id"] in bridge.ids.values()]
    assert len(from_platform) == len(bridge.ids) > 3
    assert {
        next(f["value"] for f in c["card"]["fields"] if f["label"] == "平台") for c in from_platform
    } == {f"{'抖音' if via == 'douyin' else '淘宝'} · {shop}"}


async def test_the_demo_warehouse_is_reached_through_the_jushuitan_connector(
    aiohttp_client: Client, clock: FakeClock, sqlite_url: str
) -> None:
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    jst, sf = make_fakes()
    settings = make_settings(
        sqlite_url,
        simulator={"via": "jushuitan"},
        commerce={"mode": "simulator"},
        **demo_overrides(base, jst, sf),
    )
    app = create_app(settings, clock=clock, workers=False)
    bot = Bot(await aiohttp_client(app, server_kwargs={"port": port}), clock)
    fake = app[FAKE_PLATFORM]
    assert isinstance(fake, FakeJushuitan)
    bridge = WarehouseBridge(fake, SignedSender(app[HTTP], base, SECRET, clock))
    for event in ShopSimulator(clock, 5).opening():
        await bridge(event)
    await bot.drain()
    stops = [
        next(f["value"] for f in c["card"]["fields"] if f["label"] == "截单")
        for c in await bot.cards()
        if any(f["label"] == "截单" for f in c["card"]["fields"])
    ]
    assert stops
    assert set(stops) <= {"✅ 已截单"} | {s for s in stops if s.startswith("❌ 仓库已发货")}
    assert fake.question_log

"""A 淘宝 shop connected with credentials only: the TMC channel (one connection per app across
instances) brings refunds in as cards, and an approval that needs an SMS code asks the
approver for it and goes through with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.keys import DISPATCHER, HTTP
from bot.shops import TmcRunner
from handlers.clock import FakeClock
from integrations.taobao.fake import FakeTaobao
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import serve
from tests.support.taobao import ACCESS, APP_KEY, APP_SECRET, REFRESH


@dataclass
class Shop:
    bot: Bot
    fake: FakeTaobao

    def runner(self) -> TmcRunner:
        settings = self.bot.svc.settings
        connectors = self.bot.app[DISPATCHER].shops
        return TmcRunner(self.bot.svc, self.bot.app[HTTP], list(settings.shops), connectors)

    async def consume(self, *, confirmed: int) -> None:
        """Run the TMC channel until `confirmed` messages are confirmed, then drain."""
        task = asyncio.create_task(self.runner().run())
        try:
            async with asyncio.timeout(10):
                while len(self.fake.confirms) < confirmed:  # noqa: ASYNC110 - the fake only records
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bot.drain()

    async def card(self, refund_id: str) -> dict[str, Any]:
        return next(c for c in await self.bot.cards() if c["case_id"] == refund_id)


@pytest.fixture
async def shop(clock: FakeClock, make_bot: BotFactory, sqlite_url: str) -> AsyncIterator[Shop]:
    fake = FakeTaobao(APP_KEY, APP_SECRET, clock.now, require_permit=True)
    fake.grant(ACCESS, REFRESH)
    async with serve(fake.app()) as base:
        settings = make_settings(
            sqlite_url,
            shops=[
                {
                    "id": "tb",
                    "platform": "淘宝",
                    "connector": "taobao",
                    "app_key": APP_KEY,
                    "app_secret": APP_SECRET,
                    "access_token": ACCESS,
                    "refresh_token": REFRESH,
                    "seller_nick": fake.seller_nick,
                    "api_base": f"{base}/router/rest",
                    "tmc_url": f"{base}/tmc",
                    "tmc_pull_s": 0.05,
                }
            ],
        )
        yield Shop(await make_bot(settings), fake)


async def test_a_tmc_message_becomes_a_card_and_is_confirmed_once_stored(shop: Shop) -> None:
    await shop.runner().permit()
    assert shop.fake.permitted == {shop.fake.seller_nick}
    refund_id = shop.fake.new_refund(amount_fen=12800, order_fen=12800, shipped=False)
    await shop.consume(confirmed=1)
    card = await shop.card(refund_id)
    fields = {f["label"]: f["value"] for f in card["card"]["fields"]}
    assert fields["平台"] == "淘宝 · tb"
    assert fields["后台"] == "在淘宝后台打开"
    (link,) = [f["url"] for f in card["card"]["fields"] if "url" in f]
    assert link == f"https://refund2.taobao.com/dispute/detail.htm?disputeId={refund_id}"
    assert shop.fake.nacks == []


async def test_an_approval_that_needs_an_sms_code_asks_for_it_and_uses_it(shop: Shop) -> None:
    shop.fake.require_sms = True
    await shop.runner().permit()
    refund_id = shop.fake.new_refund(amount_fen=12800, order_fen=12800, shipped=True)
    await shop.consume(confirmed=1)
    handle = (await shop.card(refund_id))["handle"]
    await shop.bot.say("sup1", f"通过 {handle}")
    await shop.bot.drain()
    card = await shop.card(refund_id)
    assert any("淘宝要求短信验证码" in line for line in card["card"]["lines"]), card
    asked = [t for t in await shop.bot.texts() if "需要短信验证码" in t]
    assert len(asked) == 1
    assert f"验证码 {handle}" in asked[0]
    (code,) = shop.fake.sms_sent
    refused = await shop.bot.say("agent1", f"验证码 {handle} {code}")
    assert refused["ok"] is False  # agent1 may not approve ¥128: nor give its code
    await shop.bot.say("sup1", f"验证码 {handle} {code}")
    await shop.bot.drain()
    agreed = shop.fake.calls("taobao.rp.refunds.agree")
    assert [call.get("code") for call in agreed] == [None, code]
    assert (await shop.card(refund_id))["state"] == "refunded"


async def test_one_tmc_connection_per_app_across_instances(shop: Shop) -> None:
    first, second = shop.runner(), shop.runner()
    tasks = [asyncio.create_task(r.run()) for r in (first, second)]
    try:
        await asyncio.sleep(0.5)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert len(shop.fake.connects) == 1


async def test_a_reply_goes_to_the_refund_thread(shop: Shop) -> None:
    await shop.runner().permit()
    refund_id = shop.fake.new_refund(amount_fen=12800, order_fen=12800, shipped=True)
    await shop.consume(confirmed=1)
    handle = (await shop.card(refund_id))["handle"]
    await shop.bot.say("agent1", f"回复 {handle} 亲，已经帮您拦截了")
    await shop.bot.drain()
    (added,) = shop.fake.calls("taobao.refund.message.add")
    assert added["refund_id"] == refund_id
    assert added["content"] == "亲，已经帮您拦截了"
    lines = (await shop.card(refund_id))["card"]["lines"]
    assert not any("未发送" in line for line in lines), lines

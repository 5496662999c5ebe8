"""`[payout] provider = "wechatpay"` (商家转账): finance confirms, WeChat Pay accepts and the
buyer must confirm receipt — the card says so and the shop system is asked to send the confirm
page; the transfer is then asked about until it ends, never sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update

from handlers.clock import FakeClock
from integrations.commerce.fake import FakeCommerce
from integrations.wechatpay.client import out_bill_no
from integrations.wechatpay.fake import FakeWechatPay
from storage.models import Payout
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served, serve
from tests.support.payout import GROUPS, make_payout
from tests.support.wechatpay import make_fake, settings_for

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
async def world(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, fake_commerce: Served[FakeCommerce]
) -> AsyncIterator[tuple[Bot, FakeWechatPay, FakeCommerce]]:
    fake = make_fake(clock)
    commerce, commerce_url = fake_commerce
    async with serve(fake.app()) as url:
        wechatpay = settings_for(fake, url).model_dump(mode="python")
        wechatpay |= {
            "private_key": settings_for(fake, url).private_key,
            "apiv3_key": settings_for(fake, url).apiv3_key,
        }
        settings = make_settings(
            sqlite_url,
            groups=GROUPS,
            payout={"provider": "wechatpay", "wechatpay": wechatpay},
            commerce={"mode": "webhook", "url": commerce_url, "secret": commerce.secret},
        )
        yield await make_bot(settings), fake, commerce


async def card(bot: Bot, payout_id: str) -> dict[str, Any]:
    return next(c for c in await bot.cards("finance") if c["case_id"] == payout_id)


async def test_the_buyer_confirms_and_the_payout_is_paid_once(
    world: tuple[Bot, FakeWechatPay, FakeCommerce], clock: FakeClock
) -> None:
    bot, fake, commerce = world
    event = make_payout(
        data_payout_id="PO20261123042", data_payee={"name": "王小明", "account": OPENID}
    )
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    shown = await card(bot, "PO20261123042")
    assert (await bot.say("sup1", f"通过 {shown['handle']}", group="finance"))["ok"]
    answer = await bot.say("fin1", f"打款确认 {shown['handle']}", group="finance")
    assert "正在通过微信支付转账" in answer["reply"]["text"]
    await bot.drain()
    shown = await card(bot, "PO20261123042")
    assert shown["state"] == "paying"
    assert any("等买家在微信里确认收款" in line for line in shown["card"]["lines"])
    (asked,) = commerce.performed("notify_payout")
    assert asked["data"]["waiting"] == "buyer_confirm"
    assert asked["data"]["package_info"]
    fake.confirm(out_bill_no("PO20261123042"))
    clock.advance(timedelta(minutes=6))
    await bot.drain()
    shown = await card(bot, "PO20261123042")
    assert shown["state"] == "paid"
    assert fake.made == 1
    assert len(commerce.performed("notify_payout")) == 2


async def confirmed(bot: Bot, payout_id: str) -> None:
    event = make_payout(data_payout_id=payout_id, data_payee={"name": "王小明", "account": OPENID})
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()
    shown = await card(bot, payout_id)
    assert (await bot.say("sup1", f"通过 {shown['handle']}", group="finance"))["ok"]
    assert (await bot.say("fin1", f"打款确认 {shown['handle']}", group="finance"))["ok"]


async def test_a_lost_answer_is_asked_about_never_sent_again(
    world: tuple[Bot, FakeWechatPay, FakeCommerce], clock: FakeClock
) -> None:
    bot, fake, _commerce = world
    fake.fail_next, fake.fail_how = 1, "lose"
    await confirmed(bot, "PO20261123043")
    await bot.drain()
    clock.advance(timedelta(minutes=2))
    await bot.drain()
    shown = await card(bot, "PO20261123043")
    assert shown["state"] == "paying"
    assert any("等买家在微信里确认收款" in line for line in shown["card"]["lines"])
    assert fake.made == 1


async def test_a_transfer_the_buyer_never_confirms_ends_failed(
    world: tuple[Bot, FakeWechatPay, FakeCommerce], clock: FakeClock
) -> None:
    bot, fake, _commerce = world
    await confirmed(bot, "PO20261123044")
    await bot.drain()
    clock.advance(timedelta(hours=25))
    fake.expire_due()
    await bot.drain()
    shown = await card(bot, "PO20261123044")
    assert shown["state"] == "failed"


async def test_a_verified_notification_settles_the_payout_and_a_forged_one_is_refused(
    world: tuple[Bot, FakeWechatPay, FakeCommerce],
) -> None:
    bot, fake, _commerce = world
    await confirmed(bot, "PO20261123045")
    await bot.drain()
    url = str(bot.client.make_url("/payout/wechatpay/notify"))
    fake.confirm(out_bill_no("PO20261123045"))
    headers, body = fake.notification(out_bill_no("PO20261123045"))
    forged = await bot.client.post("/payout/wechatpay/notify", data=body + " ", headers=headers)
    assert forged.status == 401
    assert (await card(bot, "PO20261123045"))["state"] == "paying"
    async with aiohttp.ClientSession() as session:
        assert await fake.notify(session, url, out_bill_no("PO20261123045")) == 204
        assert await fake.notify(session, url, out_bill_no("PO20261123045")) == 204
    await bot.drain()
    assert (await card(bot, "PO20261123045"))["state"] == "paid"
    assert fake.made == 1


async def test_a_request_that_may_have_left_is_asked_about_first(
    world: tuple[Bot, FakeWechatPay, FakeCommerce],
) -> None:
    """As if the process died (kill -9) after counting the send and before the request left:
    the next attempt asks WeChat Pay about `out_bill_no` first, and only then creates it."""
    bot, fake, _commerce = world
    await confirmed(bot, "PO20261123046")
    async with bot.svc.tx() as tx:
        await tx.session.execute(update(Payout).values(sends=1))
    await bot.drain()
    methods = [(method, path.rsplit("/", 1)[-1]) for method, path, _ in fake.requests]
    assert methods[0] == ("GET", out_bill_no("PO20261123046"))
    assert methods[1][0] == "POST"
    assert fake.made == 1
    assert (await card(bot, "PO20261123046"))["state"] == "paying"

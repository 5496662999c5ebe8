"""`[carrier] routes`: an SF parcel is intercepted through 顺丰 丰桥 directly, others through
快递100, and the card says which route was used; a retried key never intercepts twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from sqlalchemy import select

from bot.app import create_app
from handlers.clock import FakeClock
from integrations.kuaidi100.fake import FakeKuaidi100
from integrations.sf.fake import FakeSf
from storage.models import ConnectorState, Event
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import serve


@pytest.fixture
async def world(make_bot: BotFactory, sqlite_url: str) -> AsyncIterator[tuple[Bot, FakeSf]]:
    fake = FakeSf()
    async with serve(fake.app()) as base:
        settings = make_settings(
            sqlite_url,
            carrier={
                "mode": "none",
                "routes": {"SF": "sf"},
                "sf": {
                    "api_base": base + "/std/service",
                    "partner_id": fake.partner_id,
                    "checkword": fake.checkword,
                    "monthly_card": fake.monthly_card,
                    "return_address": {
                        "province": "广东省",
                        "city": "深圳市",
                        "county": "南山区",
                        "address": "科技园1号",
                        "contact": "仓库",
                        "phone": "13800000000",
                    },
                },
            },
        )
        yield await make_bot(settings), fake


async def intercept_card(bot: Bot) -> dict[str, Any]:
    return next(c for c in await bot.cards("ops") if c["handle"].startswith("X"))


async def test_an_sf_parcel_goes_to_sf_directly_once(world: tuple[Bot, FakeSf]) -> None:
    bot, fake = world
    await bot.refund(
        data_shipping={"status": "in_transit", "carrier": "顺丰速运", "tracking_no": "SF1400000001"}
    )
    assert fake.intercepted() == ["SF1400000001"]
    card = await intercept_card(bot)
    assert any("经顺丰丰桥申请拦截" in line for line in card["card"]["lines"]) or any(
        "经顺丰丰桥申请拦截" in f["value"] for f in card["card"]["fields"]
    ), card
    async with bot.svc.tx() as tx:
        kept = (await tx.session.scalars(select(ConnectorState.name))).all()
    assert any(name.startswith("intercept:") for name in kept)


async def test_another_carrier_takes_the_rest_route(world: tuple[Bot, FakeSf]) -> None:
    bot, fake = world
    await bot.refund(
        data_shipping={"status": "in_transit", "carrier": "ZTO", "tracking_no": "ZT1234567890"}
    )
    assert fake.intercepts == []
    card = await intercept_card(bot)
    assert card["state"] == "manual", card


async def test_kuaidi100_intercepts_and_its_signed_result_settles_the_intercept(
    aiohttp_client: Any, clock: FakeClock, sqlite_url: str
) -> None:
    fake = FakeKuaidi100(now=clock.now)
    port = unused_port()
    async with serve(fake.app()) as base, aiohttp.ClientSession() as session:
        settings = make_settings(
            sqlite_url,
            carrier={
                "mode": "kuaidi100",
                "kuaidi100": {
                    "api_base": base,
                    "key": fake.key,
                    "secret": fake.secret,
                    "couriers": {"ZTO": {"partner_id": "ZTO-P", "partner_key": "ZTO-K"}},
                    "callback_url": f"http://127.0.0.1:{port}/carrier/kuaidi100/intercept",
                    "callback_salt": "cb-salt",
                },
            },
        )
        app = create_app(settings, clock=clock, workers=False)
        bot = Bot(await aiohttp_client(app, server_kwargs={"port": port}), clock)
        await bot.refund(
            data_shipping={"status": "in_transit", "carrier": "ZTO", "tracking_no": "ZT7700001"}
        )
        (made,) = fake.intercepts
        assert made.param["partnerId"] == "ZTO-P"
        assert "经快递100申请拦截" in json.dumps(await intercept_card(bot), ensure_ascii=False)
        url, form = fake.result_form("ZT7700001", "SUCCESS", "拦截成功")
        forged = await session.post(url, data=form | {"sign": "0" * 32})
        assert forged.status == 401
        status, _ = await fake.send_result(session, "ZT7700001", "SUCCESS", "拦截成功")
        assert status == 200
        await bot.drain()
        assert (await intercept_card(bot))["state"] == "intercepted"


async def test_sf_route_pushes_need_the_urls_token(make_bot: BotFactory, sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, carrier={"mode": "none", "sf": {"push_token": "t0ken-123"}}
    )
    bot = await make_bot(settings)
    body = json.dumps(
        {
            "Body": {
                "WaybillRoute": [
                    {
                        "id": "100001",
                        "mailno": "SF1400000001",
                        "orderid": "",
                        "acceptTime": "2026-11-23 09:00:00",
                        "acceptAddress": "深圳",
                        "remark": "已收件",
                        "opCode": "50",
                    }
                ]
            }
        },
        ensure_ascii=False,
    )
    refused = await bot.client.post("/carrier/sf/routes/guess", data=body)
    assert refused.status == 401
    taken = await bot.client.post("/carrier/sf/routes/t0ken-123", data=body)
    assert await taken.json() == {"return_code": "0000", "return_msg": "成功"}
    async with bot.svc.tx() as tx:
        kept = (await tx.session.scalars(select(Event.type))).all()
    assert kept == ["shipment.tracking"]

"""`[carrier] routes`: an SF parcel is intercepted through 顺丰 丰桥 directly, others through
快递100, and the card says which route was used; a retried key never intercepts twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from integrations.sf.fake import FakeSf
from storage.models import ConnectorState
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

"""`[warehouse] connector = "jushuitan"`: a rule's 截单 goes to 聚水潭 (订单转异常) while the
refund itself goes to the shop system; goods that already left turn the refund into a shipped
parcel's, never a silent refund."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from handlers.clock import FakeClock
from integrations.commerce.fake import FakeCommerce
from integrations.jushuitan.fake import FakeJushuitan
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served, serve
from tests.support.jushuitan import APP_KEY, APP_SECRET


@pytest.fixture
async def shop(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce], clock: FakeClock
) -> AsyncIterator[tuple[Bot, FakeJushuitan, FakeCommerce]]:
    jst = FakeJushuitan(app_key=APP_KEY, app_secret=APP_SECRET, now=clock.now, hang_s=1.0)
    commerce, url = fake_commerce
    async with serve(jst.app()) as base:
        settings = make_settings(
            sqlite_url,
            commerce={"mode": "webhook", "url": url, "secret": commerce.secret},
            warehouse={
                "connector": "jushuitan",
                "api_base": base,
                "app_key": APP_KEY,
                "app_secret": SecretStr(APP_SECRET),
                "access_token": SecretStr(jst.access_token),
                "refresh_token": SecretStr(jst.refresh_token),
                "batch_window_s": 0,
            },
        )
        yield await make_bot(settings), jst, commerce


def field(card: dict[str, Any], label: str) -> str:
    return next((f["value"] for f in card["card"]["fields"] if f["label"] == label), "")


async def test_a_rules_stop_goes_to_the_warehouse_and_the_refund_to_the_shop(
    shop: tuple[Bot, FakeJushuitan, FakeCommerce],
) -> None:
    bot, jst, commerce = shop
    jst.add_order("T88001", "WaitConfirm")
    card = await bot.refund(data_shipping={"status": "unshipped"}, data_amount="128.00")
    assert field(card, "截单") == "✅ 已截单"
    assert card["state"] == "refunded"
    assert [o.status for o in jst.by_so_id("T88001")] == ["Question"]
    assert commerce.performed("stop_shipment") == []
    assert len(commerce.performed("approve_refund")) == 1


async def test_goods_the_warehouse_already_sent_are_never_taken_for_stopped(
    shop: tuple[Bot, FakeJushuitan, FakeCommerce],
) -> None:
    bot, jst, _commerce = shop
    jst.add_order("T88001", "WaitConfirm")
    jst.ship("T88001", l_id="ZT7788", company="中通快递")
    card = await bot.refund(
        data_shipping={"status": "unshipped"}, data_amount="800.00", data_order_amount="800.00"
    )
    assert field(card, "截单").startswith("❌ 仓库已发货")
    assert "ZT7788" in field(card, "截单")
    assert field(card, "物流").startswith("已发货")
    assert any("截单失败：仓库已发货" in t for t in await bot.texts())

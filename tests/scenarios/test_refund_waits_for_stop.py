"""An automatic refund of an unshipped order above `[rules] refund_before_stop_max` waits for
the warehouse to stop the order (截单) before anything goes to the shop system."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.commerce.fake import FakeCommerce
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served

UNSHIPPED = {"status": "unshipped"}


@pytest.fixture
async def shop(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    settings = make_settings(
        sqlite_url,
        commerce={"mode": "webhook", "url": url, "secret": fake.secret},
        carrier={"mode": "none"},
        rules={"refund_before_stop_max": "100"},
    )
    return await make_bot(settings), fake


async def card_of(bot: Bot, handle: str) -> dict[str, Any]:
    return next(c for c in await bot.cards() if c["handle"] == handle)


def field(card: dict[str, Any], label: str) -> str:
    return next((f["value"] for f in card["card"]["fields"] if f["label"] == label), "")


def asked(fake: FakeCommerce, action: str) -> list[dict[str, Any]]:
    """Every call of `action` that reached the shop system, answered or not."""
    return [r for r in fake.requests if r["action"] == action]


async def test_above_the_threshold_the_refund_is_sent_once_the_order_is_stopped(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.fail_next = 1  # the warehouse does not answer the first time: the refund must wait
    card = await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    assert card["state"] == "auto_approved"
    assert card["card"]["status"] == "自动通过 · 等截单成功后退款"
    assert any("等仓库截单成功后才发出" in line for line in card["card"]["lines"])
    assert asked(fake, "approve_refund") == []
    assert len(asked(fake, "stop_shipment")) == 1
    await bot.later(seconds=30)
    card = await card_of(bot, "R1")
    assert card["state"] == "refunded"
    assert field(card, "截单") == "✅ 已截单"
    assert len(fake.performed("approve_refund")) == 1
    actions = [r["action"] for r in fake.requests]
    assert actions.index("approve_refund") > len(actions) - 1 - actions[::-1].index(
        "stop_shipment"
    ), actions


async def test_above_the_threshold_goods_that_left_become_an_intercept_and_no_refund_is_sent(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.shipped["T88001"] = "已于 09:40 出库"
    fake.fail_next = 1
    await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    assert (await bot.say("agent1", "认领 R1"))["ok"]
    await bot.later(seconds=30)
    card = await card_of(bot, "R1")
    assert card["state"] == "waiting_intercept"
    assert field(card, "截单") == "❌ 仓库已发货：已于 09:40 出库，需要拦截包裹"
    assert field(card, "物流").startswith("已发货")
    assert "intercept" in [b["key"] for b in card["card"]["buttons"]]
    (told,) = [t for t in await bot.texts() if "截单失败：仓库已发货" in t]
    assert told.startswith("@agent1 ")
    assert "@sup1" not in told
    assert "退款没有发出" in told
    assert "拦截 R1" in told
    _, case = await bot.get_case("R1")
    assert case["path"] == 2
    await bot.later(hours=3)
    assert asked(fake, "approve_refund") == []


async def test_without_an_assignee_the_supervisors_are_told_the_goods_left(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.shipped["T88001"] = "已出库"
    await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    (told,) = [t for t in await bot.texts() if "截单失败：仓库已发货" in t]
    assert told.startswith("@sup1 @sup2 ")
    assert asked(fake, "approve_refund") == []


async def test_at_or_below_the_threshold_refund_and_stop_go_together(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.fail_next = 1
    card = await bot.refund(
        data_shipping=UNSHIPPED, data_amount="100.00", data_order_amount="100.00"
    )
    assert card["state"] == "refunded"
    assert len(fake.performed("approve_refund")) == 1
    assert fake.performed("stop_shipment") == []  # its first call failed; it is retried
    await bot.later(seconds=30)
    assert len(fake.performed("stop_shipment")) == 1


async def test_at_the_threshold_goods_that_left_say_the_money_went(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.shipped["T88001"] = "已出库"
    await bot.refund(data_shipping=UNSHIPPED, data_amount="60.00", data_order_amount="60.00")
    (told,) = [t for t in await bot.texts() if "截单失败：仓库已发货" in t]
    assert "退款已按未发货批准发出" in told
    assert len(fake.performed("approve_refund")) == 1


async def test_a_stop_that_fails_leaves_the_refund_to_a_person(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.refuse["stop_shipment"] = "仓库系统维护中"
    card = await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    assert card["state"] == "awaiting_review"
    assert field(card, "截单") == "❌ 截单失败：仓库系统维护中"
    assert any("截单没有成功，自动退款没有发出" in line for line in card["card"]["lines"])
    (told,) = [t for t in await bot.texts() if "截单没有成功" in t]
    assert told.startswith("@sup1 @sup2 ")  # ¥128 is above the agents' ¥50
    assert "通过 R1" in told
    assert asked(fake, "approve_refund") == []
    await bot.say("sup1", "通过 R1")
    await bot.drain()
    card = await card_of(bot, "R1")
    assert card["state"] == "refunded"
    assert len(fake.performed("approve_refund")) == 1
    assert not any("截单没有成功" in line for line in card["card"]["lines"])


async def test_a_stop_retried_by_hand_then_done_clears_the_warning(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    fake.refuse["stop_shipment"] = "仓库系统维护中"
    await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    del fake.refuse["stop_shipment"]
    assert (await bot.say("agent1", "拦截 R1"))["ok"]
    await bot.drain()
    card = await card_of(bot, "R1")
    assert field(card, "截单") == "✅ 已截单"
    assert card["state"] == "awaiting_review"
    assert not any("截单没有成功" in line for line in card["card"]["lines"])
    assert asked(fake, "approve_refund") == []


async def test_without_a_shop_system_the_waiting_refund_is_left_to_do_by_hand(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url, commerce={"mode": "none"}))
    card = await bot.refund(data_shipping=UNSHIPPED, data_amount="128.00")
    assert card["state"] == "manual_refund"
    assert field(card, "截单") == "❗ 未接仓库/ERP，没有通知仓库：请手动截单"

"""抖店 pushes: only the shop's own app may push to its URL, a captured push replayed does
nothing new, and what a push claims is never taken over what the platform's API says."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from handlers.clock import FakeClock
from integrations.douyin.fake import FakeDouyin
from storage.models import Case, OutboxItem
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import serve

KEY_A, SECRET_A = "7000000000000000001", "shop-a-secret-0123456789"
KEY_B, SECRET_B = "7000000000000000002", "shop-b-secret-0123456789"


def signed(app_key: str, secret: str, messages: list[dict[str, str]]) -> tuple[bytes, str]:
    body = json.dumps(messages, separators=(",", ":")).encode()
    return body, hashlib.md5(app_key.encode() + body + secret.encode()).hexdigest()


@pytest.fixture
async def world(
    clock: FakeClock, make_bot: BotFactory, sqlite_url: str
) -> AsyncIterator[tuple[Bot, FakeDouyin]]:
    fake = FakeDouyin(KEY_A, SECRET_A, now=clock.now)
    async with serve(fake.app()) as base:
        shops = [
            {
                "id": "a",
                "platform": "douyin",
                "connector": "douyin",
                "app_key": KEY_A,
                "app_secret": SECRET_A,
                "shop_id": fake.shop_id,
                "api_base": base,
            },
            {
                "id": "b",
                "platform": "douyin",
                "connector": "douyin",
                "app_key": KEY_B,
                "app_secret": SECRET_B,
                "shop_id": "999",
                "api_base": base,
            },
        ]
        yield await make_bot(make_settings(sqlite_url, shops=shops)), fake


async def count(bot: Bot, model: type[Case] | type[OutboxItem]) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(model)))


async def test_connector_push_signed_for_another_shop_is_refused(
    world: tuple[Bot, FakeDouyin],
) -> None:
    bot, _ = world
    body, sign = signed(KEY_B, SECRET_B, [{"tag": "200", "msg_id": "1", "data": "{}"}])
    resp = await bot.client.post("/connectors/douyin/a", data=body, headers={"event-sign": sign})
    assert resp.status == 401
    assert await count(bot, OutboxItem) == 0


async def test_connector_push_an_unsigned_or_tampered_body_is_refused(
    world: tuple[Bot, FakeDouyin],
) -> None:
    bot, _ = world
    body, sign = signed(KEY_A, SECRET_A, [{"tag": "200", "msg_id": "1", "data": "{}"}])
    for headers, sent in (
        ({}, body),
        ({"event-sign": sign}, body.replace(b'"1"', b'"2"')),
        ({"event-sign": sign.upper()[:-1] + "0"}, body),
    ):
        resp = await bot.client.post("/connectors/douyin/a", data=sent, headers=headers)
        assert resp.status == 401
        assert await resp.json() == {"code": 1, "msg": "fail"}
    assert await count(bot, OutboxItem) == 0


async def test_connector_push_claims_are_read_back_from_the_platform(
    world: tuple[Bot, FakeDouyin],
) -> None:
    """A captured push replayed with its valid sign adds nothing; and the amount a message
    carries is not what the card shows: the platform's after-sale detail is."""
    bot, fake = world
    refund_id = fake.new_aftersale(aftersale_type=1, amount=1990, message=False)
    data = json.dumps(
        {
            "aftersale_id": int(refund_id),
            "aftersale_status": 6,
            "aftersale_type": 1,
            "refund_amount": 9_999_900,
            "update_time": 1,
        }
    )
    body, sign = signed(KEY_A, SECRET_A, [{"tag": "200", "msg_id": "77", "data": data}])
    for _ in range(3):
        resp = await bot.client.post(
            "/connectors/douyin/a", data=body, headers={"event-sign": sign}
        )
        assert await resp.json() == {"code": 0, "msg": "success"}
    await bot.drain()
    assert await count(bot, OutboxItem) >= 1
    (card,) = [c for c in await bot.cards() if c["case_id"] == refund_id]
    assert "¥19.90" in card["card"]["title"]
    assert await count(bot, Case) == 1


async def test_connector_push_larger_than_the_limit_is_refused(
    world: tuple[Bot, FakeDouyin],
) -> None:
    bot, _ = world
    body = io.BytesIO(b"[" + b" " * (1024 * 1024 + 10) + b"]")
    resp = await bot.client.post("/connectors/douyin/a", data=body, headers={"event-sign": "x"})
    assert resp.status == 413

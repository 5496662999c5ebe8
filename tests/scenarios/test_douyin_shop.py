"""A 抖店 shop connected with credentials only: FakeDouyin pushes signed messages to the app,
cards appear, decisions and intercepts go back through the platform's API, and a pull
catches up what no push brought."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.keys import DISPATCHER, HTTP
from bot.shops import DatabaseTokenStore, Puller
from handlers.clock import FakeClock
from integrations.douyin.connector import DouyinConnector
from integrations.douyin.fake import FakeDouyin
from integrations.shop.connector import Tokens
from storage.enums import OutboxState
from storage.models import Case, Event, OutboxItem
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import serve

APP_KEY = "7000000000000000001"
APP_SECRET = "demo_secret_0123456789"


@dataclass
class Shop:
    bot: Bot
    fake: FakeDouyin

    @property
    def push_url(self) -> str:
        return str(self.bot.client.make_url("/connectors/douyin/dy"))

    async def push(self) -> None:
        assert await self.fake.flush(self.push_url, attempts=1)
        await self.bot.drain()

    async def card(self, aftersale_id: str) -> dict[str, Any]:
        return next(c for c in await self.bot.cards() if c["case_id"] == aftersale_id)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.bot.svc.tx() as tx:
            return int(
                await tx.session.scalar(select(func.count()).select_from(model).where(*where))
            )


@pytest.fixture
async def shop(clock: FakeClock, make_bot: BotFactory, sqlite_url: str) -> AsyncIterator[Shop]:
    fake = FakeDouyin(APP_KEY, APP_SECRET, now=clock.now)
    async with serve(fake.app()) as base:
        settings = make_settings(
            sqlite_url,
            shops=[
                {
                    "id": "dy",
                    "platform": "抖店",
                    "connector": "douyin",
                    "app_key": APP_KEY,
                    "app_secret": APP_SECRET,
                    "shop_id": fake.shop_id,
                    "api_base": base,
                }
            ],
        )
        yield Shop(await make_bot(settings), fake)


async def test_a_pushed_after_sale_becomes_one_card_with_the_platforms_reasons_and_link(
    shop: Shop,
) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1, amount=1990, reason="拍错了")
    messages = shop.fake.pending_messages()
    await shop.push()
    card = await shop.card(refund_id)
    fields = {f["label"]: f["value"] for f in card["card"]["fields"]}
    links = {f["label"]: f["url"] for f in card["card"]["fields"] if "url" in f}
    assert fields["平台"] == "抖音 · dy"
    assert "¥19.90" in card["card"]["title"]
    assert fields["后台"] == "在抖店后台打开"
    assert links["后台"].startswith("https://fxg.jinritemai.com/")
    assert any("拒绝理由（平台）：1 买家已收到货" in line for line in card["card"]["lines"])
    # The same push again (the platform redelivers): still one message, one event, one case.
    assert await shop.fake.push(shop.push_url, messages, attempts=1)
    await shop.bot.drain()
    assert await shop.count(OutboxItem, OutboxItem.kind == "shop.message") == 1
    assert await shop.count(Case, Case.case_id == refund_id) == 1
    async with shop.bot.svc.tx() as tx:
        event = await tx.session.scalar(select(Event).where(Event.type == "refund.requested"))
    assert event is not None
    assert event.body["data"]["platform_message"]["msg_id"]


async def test_approving_in_chat_agrees_on_the_platform(shop: Shop) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1, amount=12800, reason="不想要了")
    await shop.push()
    handle = (await shop.card(refund_id))["card"]["title"].split()[1]
    await shop.bot.say("sup1", f"通过 {handle}")
    await shop.bot.drain()
    operated = shop.fake.calls("afterSale/operate")
    assert [item["aftersale_id"] for call in operated for item in call["items"]] == [refund_id]
    assert shop.fake.aftersales[refund_id].status != 6
    assert (await shop.card(refund_id))["state"] in ("refunded", "submitted")


async def test_a_refusal_takes_the_platforms_reason_picked_by_number(shop: Shop) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1, amount=12800)
    await shop.push()
    handle = (await shop.card(refund_id))["card"]["title"].split()[1]
    said = await shop.bot.say("agent1", f"拒绝 {handle} 照片看不清")
    assert "平台要求选择拒绝理由" in said["reply"]["text"], said
    await shop.bot.say("agent1", f"拒绝 {handle} 2 已发货请拒收")
    await shop.bot.drain()
    (call,) = shop.fake.calls("afterSale/operate")
    (item,) = call["items"]
    assert item["reject_reason_code"] == 2


async def test_what_the_platform_will_not_do_by_api_becomes_a_manual_line(shop: Shop) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1, amount=12800)
    shop.fake.manual_ids.add(refund_id)
    await shop.push()
    handle = (await shop.card(refund_id))["card"]["title"].split()[1]
    await shop.bot.say("sup1", f"通过 {handle}")
    await shop.bot.drain()
    card = await shop.card(refund_id)
    assert card["state"] == "manual_refund"
    assert any("抖店不支持通过接口审核" in line for line in card["card"]["lines"])
    assert await shop.count(OutboxItem, OutboxItem.state == OutboxState.DEAD.value) == 0


async def test_a_revoked_authorisation_tells_the_admins_once_and_loses_nothing(
    shop: Shop,
) -> None:
    first = shop.fake.new_aftersale(aftersale_type=1, amount=12800)
    second = shop.fake.new_aftersale(aftersale_type=1, amount=13800)
    await shop.push()
    shop.fake.revoke_all(deauthorize=True)
    for refund_id in (first, second):
        handle = (await shop.card(refund_id))["card"]["title"].split()[1]
        await shop.bot.say("sup1", f"通过 {handle}")
    await shop.bot.drain()
    notices = [t for t in await shop.bot.texts("ops") if "平台授权已失效" in t]
    assert len(notices) == 1
    assert "dy" in notices[0]
    assert await shop.count(OutboxItem, OutboxItem.state == OutboxState.DEAD.value) == 0
    assert (
        await shop.count(
            OutboxItem,
            OutboxItem.kind == "commerce.approve_refund",
            OutboxItem.state == OutboxState.PENDING.value,
        )
        == 2
    )


async def test_a_push_with_a_bad_sign_is_refused_and_stores_nothing(shop: Shop) -> None:
    body = b'[{"tag":"200","msg_id":"1","data":"{}"}]'
    resp = await shop.bot.client.post(
        "/connectors/douyin/dy", data=body, headers={"event-sign": "0" * 32}
    )
    assert resp.status == 401
    assert await resp.json() == {"code": 1, "msg": "fail"}
    other = await shop.bot.client.post("/connectors/douyin/nope", data=body)
    assert other.status == 404
    assert await shop.count(OutboxItem, OutboxItem.kind == "shop.message") == 0


async def test_an_unreadable_push_is_kept_and_reported_not_redelivered(shop: Shop) -> None:
    assert await shop.fake.push(shop.push_url, [{"what": "not a message"}], attempts=1)
    await shop.bot.drain()
    assert await shop.count(OutboxItem, OutboxItem.kind == "shop.message") == 1
    assert any("无法解析的平台推送" in t for t in await shop.bot.texts("ops"))


async def test_an_unknown_tag_is_reported_once_and_other_messages_go_on(shop: Shop) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1)
    strange = [{"tag": "999", "msg_id": f"m{i}", "data": "{}"} for i in range(2)]
    assert await shop.fake.push(shop.push_url, strange, attempts=1)
    await shop.push()
    assert await shop.count(Case, Case.case_id == refund_id) == 1
    assert len([t for t in await shop.bot.texts("ops") if "未识别的平台消息 999" in t]) == 1


async def test_a_pull_catches_up_what_no_push_brought_once(shop: Shop, clock: FakeClock) -> None:
    ids = [shop.fake.new_aftersale(aftersale_type=1, message=False) for _ in range(130)]
    clock.advance(timedelta(minutes=10))
    puller = Puller(shop.bot.svc, shop.bot.app[DISPATCHER].shops)
    await puller.run_once()
    await shop.bot.drain()
    assert await shop.count(Case, Case.case_id.in_(ids)) == 130
    events = await shop.count(Event)
    puller.due.clear()
    await puller.run_once()
    assert await shop.count(Event) == events


async def test_a_shipped_parcel_is_intercepted_through_the_platform(
    shop: Shop, clock: FakeClock
) -> None:
    refund_id = shop.fake.new_aftersale(
        aftersale_type=1, amount=12800, tracking_no="SF1234567890", company_code="shunfeng"
    )
    await shop.push()
    (call,) = shop.fake.calls("afterSale/applyLogisticsIntercept")
    assert str(call["after_sale_id"]) == refund_id
    assert call["intercept_targets"] == [
        {"company_code": "shunfeng", "tracking_no": "SF1234567890"}
    ]
    shop.fake.parcel_returning(refund_id)
    clock.advance(timedelta(minutes=10))
    await Puller(shop.bot.svc, shop.bot.app[DISPATCHER].shops).run_once()
    await shop.bot.drain()
    card = await shop.card(refund_id)
    assert card["state"] != "waiting_intercept", card


async def test_tokens_are_refreshed_once_across_instances_and_kept(
    shop: Shop, clock: FakeClock
) -> None:
    """Two instances (two connectors, one database) find the token about to expire: one
    refreshes, the other reads what it saved."""
    grant = shop.fake.grant(ttl_s=300)
    store = DatabaseTokenStore(shop.bot.svc, "dy")
    await store.save(
        Tokens(grant.access_token, grant.refresh_token, clock.now() + timedelta(seconds=300))
    )
    settings = shop.bot.svc.settings.shops[0]
    session = shop.bot.app[HTTP]
    twins = [
        DouyinConnector(settings, session, DatabaseTokenStore(shop.bot.svc, "dy"), clock)
        for _ in range(2)
    ]
    await asyncio.gather(*(t.client.access_token() for t in twins))
    assert len(shop.fake.calls("token/refresh")) == 1
    kept = await store.load()
    assert kept is not None
    assert kept.access_token != grant.access_token
    assert kept.expires_at is not None
    assert kept.expires_at > clock.now() + timedelta(days=1)


async def test_a_reply_to_a_douyin_buyer_is_kept_for_pasting(shop: Shop) -> None:
    refund_id = shop.fake.new_aftersale(aftersale_type=1, amount=12800, delivered=True)
    await shop.push()
    card = await shop.card(refund_id)
    assert card["state"] == "awaiting_review"
    said = await shop.bot.say("agent1", f"回复 {card['handle']} 亲，已经在处理了")
    assert "[commerce] mode = none" not in said["reply"]["text"]
    await shop.bot.drain()
    lines = (await shop.card(refund_id))["card"]["lines"]
    assert any("亲，已经在处理了 · 未发送" in line for line in lines), lines
    assert any("抖店没有开放回复买家的接口" in line for line in lines), lines

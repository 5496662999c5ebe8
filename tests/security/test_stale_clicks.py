"""Attacks with stale buttons: a card still showing ¥40 approving the ¥1,800 the shop raised it
to. Every click carries the card version it was drawn from; one drawn before the case's last
material change is refused ("卡片已更新，请看最新金额") and the card is redrawn."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import PROCESSOR
from handlers.clock import FakeClock
from integrations.dingtalk.fake import FakeDingtalk
from integrations.dingtalk.models import CARD_TOPIC
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import FakeWeComAIBot, FakeWeComAPI, WeComCallbacks
from storage.models import AuditEntry, Case
from tests.support.app import Bot, BotFactory, make_refund, make_settings
from tests.support.dingtalk import ding, ding_settings, running_fake, streaming
from tests.support.fakes import Served, serve
from tests.support.wecom import (
    AES_KEY,
    AIBOT_CHAT,
    CORP_ID,
    TOKEN,
    aibot_group,
    coordination,
    markdowns,
    userid,
    wecom_settings,
)

STALE = "卡片已更新，请看最新金额"
CHAT = AIBOT_CHAT


async def raise_amount(bot: Bot, *, to: str = "1800.00", dispatch: bool = False) -> None:
    """The shop raises R1's amount; the cards are redrawn only when `dispatch`."""
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
    assert case is not None
    event = {
        "id": f"evt_raise_{case.case_id}_{to}",
        "type": "refund.updated",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": case.case_id, "amount": to},
    }
    assert (await bot.post_event(event))[0] == 202
    if dispatch:
        await bot.drain()
    else:
        assert await bot.app[PROCESSOR].run_once() == 1


async def case_row(bot: Bot) -> Case:
    async with bot.svc.tx() as tx:
        case: Case | None = await tx.cases.find("R1")
    assert case is not None
    return case


async def approvals(bot: Bot) -> int:
    async with bot.svc.tx() as tx:
        rows = await tx.session.scalars(select(AuditEntry).where(AuditEntry.action == "approve"))
        return len(rows.all())


async def new_refund(bot: Bot) -> None:
    event = make_refund(data_amount="40.00", data_order_amount="5000.00")
    assert (await bot.post_event(event))[0] == 202
    await bot.drain()


# -- sandbox ---------------------------------------------------------------------------------


async def click(bot: Bot, message_id: int, key: str, **extra: Any) -> tuple[int, Any]:
    resp = await bot.client.post(
        "/sandbox/api/groups/aftersales/click",
        json={"user": "sup1", "message_id": message_id, "key": key, **extra},
    )
    return resp.status, await resp.json()


async def test_stale_sandbox_click_is_refused_and_the_card_redrawn(bot: Bot) -> None:
    await new_refund(bot)
    (card,) = await bot.cards()
    assert card["card"]["title"].endswith("¥40.00")
    await raise_amount(bot)
    status, answer = await click(bot, card["id"], "approve")
    assert status == 200
    assert not answer["ok"]
    assert STALE in answer["reply"]["text"]
    assert answer["message"]["card"]["title"].endswith("¥1,800.00"), "redrawn"
    assert (await case_row(bot)).state == "awaiting_review"
    assert await approvals(bot) == 0

    status, answer = await click(bot, card["id"], "approve")
    assert answer["ok"], answer
    assert "¥1,800.00" in answer["reply"]["text"]


async def test_sandbox_page_sends_the_version_it_shows(bot: Bot) -> None:
    await new_refund(bot)
    (card,) = await bot.cards()
    drawn = card["card"]["version"]
    await raise_amount(bot, dispatch=True)
    (fresh,) = await bot.cards()
    assert fresh["card"]["version"] > drawn
    status, answer = await click(bot, card["id"], "approve", version=drawn)
    assert status == 200
    assert not answer["ok"]
    assert STALE in answer["reply"]["text"]
    assert await approvals(bot) == 0
    status, answer = await click(bot, card["id"], "approve", version=fresh["card"]["version"])
    assert answer["ok"], answer


# -- WeCom AI bot (websocket) ------------------------------------------------------------------


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(corp_id=CORP_ID, now=lambda: clock.now().timestamp())
    fake.webhook_keys |= {"ops-key"}
    async with serve(fake.app()) as fake.base_url:
        yield fake


@pytest.fixture
async def aibot() -> AsyncIterator[Served[FakeWeComAIBot]]:
    fake = FakeWeComAIBot(chats={CHAT})
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/")


async def test_stale_wecom_aibot_click_is_refused_and_the_card_redrawn(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    aibot: Served[FakeWeComAIBot],
) -> None:
    fake, ws_url = aibot
    async with aibot_group(make_bot, sqlite_url, clock, api, ws_url) as bot:
        await new_refund(bot)
        ((task_id, card),) = fake.cards[CHAT].items()
        assert card["main_title"]["title"].endswith("¥40.00")
        drawn = (await case_row(bot)).version
        await raise_amount(bot, dispatch=True)
        assert fake.card(CHAT, task_id)["main_title"]["title"].endswith("¥40.00"), (
            "the AI bot cannot edit a card outside a click's answer"
        )

        await fake.click(userid("sup1"), CHAT, task_id, f"approve:R1:{drawn}")
        await fake.wait_for(lambda: any(STALE in m for m in markdowns(fake)))
        await fake.wait_for(lambda: fake.updates)
        assert fake.card(CHAT, task_id)["main_title"]["title"].endswith("¥1,800.00")
        assert (await case_row(bot)).state == "awaiting_review"
        assert await approvals(bot) == 0

        version = (await case_row(bot)).version
        assert fake.button_keys(CHAT, task_id)[0] == f"approve:R1:{version}"
        await fake.click(userid("sup1"), CHAT, task_id, f"approve:R1:{version}")
        await fake.wait_for(lambda: len(fake.updates) == 2)
        assert (await case_row(bot)).state == "approved"


# -- WeCom self-built app (cards by DM) --------------------------------------------------------


async def test_stale_wecom_app_click_is_refused_and_the_card_redrawn(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, api: FakeWeComAPI
) -> None:
    callbacks = WeComCallbacks(
        CallbackCrypto(TOKEN, AES_KEY, CORP_ID), CORP_ID, 1000002, lambda: clock.now().timestamp()
    )
    settings = wecom_settings(
        sqlite_url,
        [
            {
                "id": "approvals",
                "channel": "wecom_app",
                "chat_id": "sup1|sup2",
                "kinds": ["refund"],
            },
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
        wecom={"api_base": api.base_url},
    )
    bot = await make_bot(settings, coord=coordination(clock))
    await new_refund(bot)
    ((task_id, card),) = api.cards.items()
    assert card["main_title"]["title"].endswith("¥40.00")
    noted = callbacks.app_text(userid("sup2"), "备注 R1 已联系买家")
    assert (await bot.client.post(f"/wecom/callback?{noted[0]}", data=noted[1])).status == 200
    await bot.drain()
    assert "已联系买家" in api.cards[task_id]["sub_title_text"], "the send's own code redrew it"
    drawn = (await case_row(bot)).version
    await raise_amount(bot, dispatch=True)
    assert api.cards[task_id]["main_title"]["title"].endswith("¥40.00"), "no response code left"

    tap = callbacks.app_click(
        userid("sup1"), task_id, f"approve:R1:{drawn}", api.click_code(task_id)
    )
    resp = await bot.client.post(f"/wecom/callback?{tap[0]}", data=tap[1])
    assert resp.status == 200
    await api.wait_for(lambda: api.texts)
    assert api.texts[-1] == (userid("sup1"), STALE)
    assert api.cards[task_id]["main_title"]["title"].endswith("¥1,800.00"), "the click redrew it"
    assert (await case_row(bot)).state == "awaiting_review"
    assert await approvals(bot) == 0


# -- DingTalk (stream) -------------------------------------------------------------------------


@pytest.fixture
async def ding_fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with running_fake(clock) as running:
        yield running


async def test_stale_dingtalk_click_is_refused_and_the_card_redrawn(
    make_bot: BotFactory, db_url: str, ding_fake: FakeDingtalk
) -> None:
    fake = ding_fake
    bot = await make_bot(ding_settings(db_url, fake))
    await new_refund(bot)
    ((track, card),) = fake.cards.items()
    assert card.params["title"].endswith("¥40.00")
    await raise_amount(bot)
    assert card.params["title"].endswith("¥40.00"), "the update has not reached DingTalk yet"
    async with streaming(bot):
        response = await fake.click(track, ding("sup1"), "approve")
    assert response["cardData"]["cardParamMap"]["title"].endswith("¥1,800.00")
    assert card.params["title"].endswith("¥1,800.00")
    assert (await case_row(bot)).state == "awaiting_review"
    assert await approvals(bot) == 0
    assert any(STALE in str(m["param"]["content"]) for m in fake.group_messages) or any(
        STALE in r["text"]["content"] for r in fake.session_replies
    )


async def test_dingtalk_click_from_a_card_drawn_before_versions_uses_what_dingtalk_shows(
    make_bot: BotFactory, sqlite_url: str, ding_fake: FakeDingtalk
) -> None:
    """A card delivered by an older template sends no version: the version last delivered to
    that card instance (what DingTalk shows) stands in for it."""
    fake = ding_fake
    bot = await make_bot(ding_settings(sqlite_url, fake))
    await new_refund(bot)
    ((track, card),) = fake.cards.items()
    await raise_amount(bot)
    payload = fake.click_payload(track, ding("sup1"), "approve")
    content = json.loads(payload["content"])
    content["cardPrivateData"]["params"] = {"action": "approve", "case": "R1"}
    payload["content"] = json.dumps(content)
    async with streaming(bot):
        await fake.acked(await fake.push(CARD_TOPIC, payload))
    assert (await case_row(bot)).state == "awaiting_review"
    assert await approvals(bot) == 0
    assert card.params["title"].endswith("¥1,800.00")


# -- batch cards -------------------------------------------------------------------------------


async def test_approve_all_skips_a_case_whose_amount_changed_after_the_batch_card(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock
) -> None:
    settings = make_settings(
        sqlite_url,
        groups=[
            {"id": "aftersales", "channel": "sandbox", "kinds": ["refund"], "max_per_minute": 20},
            {"id": "ops", "channel": "sandbox"},
        ],
    )
    bot = await make_bot(settings, coord=coordination(clock))
    for _ in range(12):
        assert (
            await bot.post_event(make_refund(data_amount="40.00", data_order_amount="5000.00"))
        )[0] == 202
    await bot.drain()
    (fold,) = [m for m in await bot.messages() if m["card"] and m["card"]["title"].startswith("⚡")]
    listed = [part.split(" ")[0] for line in fold["card"]["lines"] for part in line.split(" · ")]
    handle = listed[0]
    async with bot.svc.tx() as tx:
        case = await tx.cases.find(handle)
    assert case is not None
    event = {
        "id": "evt_raise_in_fold",
        "type": "refund.updated",
        "occurred_at": clock.now().isoformat(),
        "data": {"refund_id": case.case_id, "amount": "45.00"},
    }
    assert (await bot.post_event(event))[0] == 202
    assert await bot.app[PROCESSOR].run_once() == 1

    status, answer = await bot.click("agent1", fold["id"], "approve_all")
    assert status == 200
    assert f"{STALE}，未处理：{handle}" in answer["reply"]["text"]
    async with bot.svc.tx() as tx:
        after = await tx.cases.find(handle)
    assert after is not None
    assert after.state == "awaiting_review"
    assert f"{handle} ¥45.00" not in answer["reply"]["text"]

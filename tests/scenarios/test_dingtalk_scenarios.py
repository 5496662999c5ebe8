"""DingTalk end to end against FakeDingtalk: a group works a refund by @-commands and taps.

The stream gateway, open API, session webhooks and custom robot are the fake's; the app,
its database, commands and dispatcher are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.registry import commands
from commands import ChatInput
from handlers import digest
from handlers.clock import FakeClock
from integrations.dingtalk.fake import FakeDingtalk, until
from integrations.dingtalk.models import ROBOT_TOPIC
from integrations.dingtalk.signing import sign
from storage.coordination import InProcessCoordination
from storage.models import OutboxItem
from tests.support.app import STAFF, Bot, BotFactory, make_refund
from tests.support.dingtalk import (
    CHAT,
    TEMPLATE,
    ding,
    ding_settings,
    running_fake,
    stream_of,
    streaming,
)

ROUTER = commands()

Client = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with running_fake(clock) as running:
        yield running


async def ding_bot(make_bot: BotFactory, db_url: str, fake: FakeDingtalk, **kw: Any) -> Bot:
    return await make_bot(ding_settings(db_url, fake, **kw))


async def refund(bot: Bot, **overrides: Any) -> None:
    status, _ = await bot.post_event(make_refund(**overrides))
    assert status == 202
    await bot.drain()


def replies(fake: FakeDingtalk) -> list[str]:
    return [r["text"]["content"] for r in fake.session_replies]


def the_card(fake: FakeDingtalk) -> str:
    """The outTrackId of the one card the fake holds."""
    (card,) = fake.cards.values()
    return card.out_track_id


def group_lines(fake: FakeDingtalk) -> list[str]:
    return [str(m["param"]["content"]) for m in fake.group_messages]


async def test_typed_approval_then_a_late_tap_same_card_and_the_loser_told(
    make_bot: BotFactory, db_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, db_url, fake)
    await refund(bot)
    (card,) = fake.cards.values()
    assert card.out_track_id.startswith("refund-R1-")
    assert card.space_id == f"dtv1.card//IM_GROUP.{CHAT}"
    assert card.template_id == TEMPLATE
    assert card.callback_type == "STREAM"
    assert card.params["status"] == "待审核"
    assert card.params["approve_visible"] == "true"
    async with streaming(bot):
        ack = await fake.say("通过 R1", sender_staff_id=ding("sup1"), conversation_id=CHAT)
        assert ack["code"] == 200
        (answer,) = fake.session_replies
        assert answer["text"]["content"].startswith(f"@{ding('sup1')} ✅ 已通过 R1（¥128.00）")
        assert answer["at"]["atUserIds"] == [ding("sup1")]
        response = await fake.click(card.out_track_id, ding("sup2"), "approve")
    (told,) = group_lines(fake)
    assert told.startswith("@sup2 R1 现在是「已通过 · 退款提交中」（sup1 通过 · 11-23 10:00）")
    assert told.endswith("不能再通过")
    assert card.params["status"] == "已通过"
    assert card.params["approve_visible"] == "false"
    assert response["cardData"]["cardParamMap"]["status"] == "已通过"
    await bot.drain()
    assert card.params["status"] == "已通过 · 待手动退款"
    assert card.params["footer"].startswith("系统 转手动退款")
    assert list(fake.cards) == [card.out_track_id]
    assert fake.count("POST", "/v1.0/card/instances/createAndDeliver") == 1
    _, case = await bot.get_case("R1")
    approvals = [(h["actor"], h["channel"]) for h in case["history"] if h["action"] == "approve"]
    assert approvals == [("sup1", "dingtalk_stream")]


async def test_tap_approve_updates_the_card_for_the_group_at_once(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot, data_amount="30.00", data_order_amount="30.00")
    async with streaming(bot):
        response = await fake.click(the_card(fake), ding("agent1"), "approve")
    card = fake.cards[the_card(fake)]
    assert response["cardUpdateOptions"] == {"updateCardDataByKey": True}
    assert response["cardData"]["cardParamMap"]["status"] == "已通过"
    assert card.params["status"] == "已通过"
    assert card.params["footer"] == "agent1 通过 · 11-23 10:00"
    assert [source for source, _ in card.updates] == ["api", "callback"]
    assert fake.group_messages == []


async def test_two_taps_at_once_give_one_approval_and_the_loser_is_named(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    async with streaming(bot):
        answers = await asyncio.gather(
            fake.click(the_card(fake), ding("sup1"), "approve"),
            fake.click(the_card(fake), ding("sup2"), "approve"),
        )
    assert all(a["cardData"]["cardParamMap"]["approve_visible"] == "false" for a in answers)
    _, case = await bot.get_case("R1")
    (winner,) = [h["actor"] for h in case["history"] if h["action"] == "approve"]
    loser = "sup2" if winner == "sup1" else "sup1"
    (told,) = group_lines(fake)
    assert told.startswith(f"@{loser} R1 现在是「已通过 · 退款提交中」（{winner} 通过")


async def test_agent_over_limit_escalates_with_mentions(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    async with streaming(bot):
        await fake.say("@refundops 通过 R1", sender_staff_id=ding("agent1"), conversation_id=CHAT)
    (answer,) = fake.session_replies
    assert "超出你的权限（¥50.00），已升级给主管：sup1、sup2、admin1" in answer["text"]["content"]
    assert answer["at"]["atUserIds"] == [ding(s) for s in ("agent1", "sup1", "sup2", "admin1")]
    await bot.drain()
    card = fake.cards[the_card(fake)]
    assert card.params["status"] == "待主管审批"
    assert card.params["mentions"] == "sup1、sup2、admin1"


async def test_people_outside_the_directory_are_refused(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    async with streaming(bot):
        await fake.say("通过 R1", sender_staff_id="stranger", conversation_id=CHAT)
        await fake.click(the_card(fake), "stranger", "approve")
    assert "你不在售后名单中" in replies(fake)[0]
    (told,) = group_lines(fake)
    assert told.startswith("@stranger 你不在售后名单中")
    assert fake.cards[the_card(fake)].params["status"] == "待审核"


async def test_duplicate_message_ids_are_acked_and_handled_once(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    # From a group no [[groups]] entry names: only an admin may act there.
    message = fake.robot_message(
        "备注 R1 买家来电", sender_staff_id=ding("admin1"), msg_id="msgONE"
    )
    async with streaming(bot):
        for frame_id in ("frame-1", "frame-1", "frame-2"):
            await fake.push(ROBOT_TOPIC, message, message_id=frame_id)
        await until(lambda: len(fake.acks_of("frame-1")) == 2 and bool(fake.acks_of("frame-2")))
        await until(lambda: bool(fake.session_replies))
    acks = [*fake.acks_of("frame-1"), *fake.acks_of("frame-2")]
    assert "(openConversationId cidGROUP==) is not in [[groups]]" in caplog.text
    assert [a["code"] for a in acks] == [200, 200, 200]
    (reply,) = replies(fake)
    # The group learns its own id with the answer (it is being set up).
    assert reply.startswith(f"@{ding('admin1')} 已记下 R1 的备注\n\n本群还没有接入 refundops")
    assert reply.endswith('chat_id = "cidGROUP=="')
    _, case = await bot.get_case("R1")
    assert sum(h["action"] == "note" for h in case["history"]) == 1


async def test_pings_are_answered_with_their_opaque_and_frames_acked_in_format(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    async with streaming(bot):
        opaque, ack = await fake.ping()
        said = await fake.say("帮助", sender_staff_id=ding("agent1"), conversation_id=CHAT)
    assert ack["code"] == 200
    assert json.loads(ack["data"]) == {"opaque": opaque}
    assert set(said) == {"code", "headers", "message", "data"}
    assert said["headers"]["contentType"] == "application/json"
    assert said["message"] == "OK"
    assert json.loads(said["data"]) == {"response": None}
    assert "可用命令" in replies(fake)[0]


async def test_stream_reconnects_after_disconnect_and_after_a_drop(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    fake.fail_next["/v1.0/gateway/connections/open"] = 2

    def opened() -> int:
        return fake.count("POST", "/v1.0/gateway/connections/open")

    async with streaming(bot) as channel:
        assert opened() == 3
        goodbye = await fake.disconnect()
        assert (await fake.acked(goodbye))["code"] == 200
        await until(lambda: fake.connects == 2 and bool(fake.live()))
        await fake.drop()
        await until(lambda: fake.connects == 3 and bool(fake.live()))
        await fake.say("认领 R1", sender_staff_id=ding("agent2"), conversation_id=CHAT)
        assert channel.stream.connections == 3
    assert replies(fake) == [f"@{ding('agent2')} 👌 R1 由 agent2 处理"]
    assert opened() == 5
    assert len(fake.opens) == 3


async def test_expired_session_webhook_falls_back_to_the_open_api(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    stale = fake.robot_message("查 R1", sender_staff_id=ding("fin1"), conversation_id=CHAT)
    gone = fake.robot_message("待办", sender_staff_id=ding("sup1"), conversation_id=CHAT)
    fake.sessions.clear()
    clock.advance(minutes=100)
    async with streaming(bot):
        await fake.acked(await fake.push(ROBOT_TOPIC, stale))
        gone["sessionWebhookExpiredTime"] = fake.now_ms() + 60_000
        await fake.acked(await fake.push(ROBOT_TOPIC, gone))
    assert fake.session_replies == []
    assert fake.count("POST", "/robot/sendBySession") == 1
    shown, todo = group_lines(fake)
    assert shown.startswith("@fin1 【仅退款 R1 · ¥128.00】待审核")
    assert todo.startswith("@sup1 sup1 的待办（1）")
    assert {m["conversation"] for m in fake.group_messages} == {CHAT}


async def test_direct_messages_are_answered_in_the_direct_chat(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    message = fake.robot_message(
        "help", sender_staff_id=ding("sup1"), conversation_id="cidDM==", conversation_type="1"
    )
    fake.sessions.clear()
    async with streaming(bot):
        await fake.acked(await fake.push(ROBOT_TOPIC, message))
    ((users, key, param),) = [(m["users"], m["key"], m["param"]) for m in fake.user_messages]
    assert (users, key) == ([ding("sup1")], "sampleText")
    assert param["content"].startswith("可用命令")


async def test_the_access_token_is_refreshed_when_refused(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    fake.expire_tokens()
    await bot.say("admin1", "通过 R1", group="ops")
    await bot.drain()
    assert fake.cards[the_card(fake)].params["status"] == "已通过 · 待手动退款"
    assert fake.tokens_issued == 2


async def test_lifecycle_runs_the_stream_and_stops_it_on_shutdown(
    aiohttp_client: Client, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    settings = ding_settings(sqlite_url, fake, dispatch={"poll_s": 0.05}, timers={"poll_s": 0.05})
    client = await aiohttp_client(create_app(settings, clock=clock))
    app = client.app
    assert app is not None
    await until(lambda: bool(fake.live()))
    await fake.say("帮助", sender_staff_id=ding("agent1"), conversation_id=CHAT)
    assert len(fake.session_replies) == 1
    channel = stream_of(Bot(client, clock))
    await asyncio.wait_for(client.close(), 5)
    await until(lambda: not fake.live())
    assert not channel.stream.connected.is_set()


# -- HTTP mode ------------------------------------------------------------------------------


async def test_http_mode_verifies_answers_and_updates_cards(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake, channel="dingtalk_http")
    await refund(bot)
    card = fake.cards[the_card(fake)]
    assert (card.callback_type, card.route_key) == ("HTTP", "refundops")
    (registered,) = fake.registrations.values()
    assert registered["callbackUrl"] == "https://refundops.example.com/dingtalk/card"
    assert registered["apiSecret"] == fake.app_secret
    message = fake.robot_message("认领 R1", sender_staff_id=ding("agent1"), conversation_id=CHAT)
    body = json.dumps(message, ensure_ascii=False).encode()
    post = bot.client.post
    forged = fake.robot_headers() | {"sign": sign("wrong", fake.now_ms())}
    assert (await post("/dingtalk/robot", data=body, headers=forged)).status == 401
    late = fake.robot_headers(at_ms=fake.now_ms() - 300_001)
    assert (await post("/dingtalk/robot", data=body, headers=late)).status == 401
    bad = await post("/dingtalk/robot", data=b'{"msgtype": "text"}', headers=fake.robot_headers())
    assert bad.status == 400
    assert {"field": "msgId", "message": "Field required"} in (await bad.json())["fields"]
    for skew_ms in (1, 2):
        headers = fake.robot_headers(at_ms=fake.now_ms() + skew_ms)
        resp = await post("/dingtalk/robot", data=body, headers=headers)
        assert resp.status == 200
    assert replies(fake) == [f"@{ding('agent1')} 👌 R1 由 agent1 处理"]
    click = json.dumps(fake.click_payload(card.out_track_id, ding("sup1"), "approve")).encode()
    resp = await post("/dingtalk/card", data=click, headers=fake.card_headers(card.out_track_id))
    assert resp.status == 200
    answer = await resp.json()
    assert answer["cardData"]["cardParamMap"]["status"].startswith("已")
    assert card.params["status"] == answer["cardData"]["cardParamMap"]["status"]
    unsigned = await post("/dingtalk/card", data=click)
    assert unsigned.status == 401
    torn = await post(
        "/dingtalk/card",
        data=json.dumps({"outTrackId": card.out_track_id}),
        headers=fake.card_headers(card.out_track_id, at_ms=fake.now_ms() + 1),
    )
    assert torn.status == 400
    assert {"field": "userId", "message": "Field required"} in (await torn.json())["fields"]
    await bot.drain()
    assert fake.count("POST", "/v1.0/card/callbacks/register") == 1


async def test_dingtalk_routes_exist_only_with_an_http_mode_group(bot: Bot) -> None:
    resp = await bot.client.post("/dingtalk/robot", data=b"{}")
    assert resp.status == 404


# -- custom robot webhook -------------------------------------------------------------------


async def webhook_bot(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> Bot:
    # Token buckets follow the test clock, like every other wait in these tests. A robot
    # group cannot be typed in: its people act on its cases from a DM ([[staff]] groups).
    coord = InProcessCoordination(monotonic=lambda: clock.now().timestamp())
    staff = [
        {**s, "dingtalk_staff_id": ding(str(s["id"])), "groups": ["aftersales"]} for s in STAFF
    ]
    settings = ding_settings(sqlite_url, fake, channel="dingtalk_webhook", staff=staff)
    return await make_bot(settings, coord=coord)


async def test_webhook_throttled_130101_waits_ten_minutes_and_loses_nothing(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await webhook_bot(make_bot, sqlite_url, fake, clock)
    fake.throttle_next_robot = 1
    await refund(bot)
    assert fake.robot_messages == []
    assert fake.robot_errors == [130101]
    clock.advance(minutes=9)
    await bot.drain()
    assert fake.robot_messages == []
    assert fake.robot_errors == [130101]
    clock.advance(minutes=1, seconds=1)
    await bot.drain()
    (sent,) = fake.robot_messages
    assert sent["msgtype"] == "markdown"
    assert sent["markdown"]["text"].startswith("### 仅退款 R1 · ¥128.00\n\n**待审核**")
    async with bot.svc.tx() as tx:
        assert await tx.outbox.depth() == {}


async def test_webhook_burst_stays_within_20_a_minute(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await webhook_bot(make_bot, sqlite_url, fake, clock)
    for _ in range(30):
        await bot.post_event(make_refund())
    for _ in range(60):
        await bot.drain()
        clock.advance(seconds=4)
    assert fake.robot_errors == []
    texts = " ".join(m["markdown"]["text"] for m in fake.robot_messages)
    assert {f"R{i}" for i in range(1, 31)} <= set(re.findall(r"R\d+", texts))
    assert any(m["markdown"]["title"].startswith("⚡") for m in fake.robot_messages)
    stamps = [m["sent_at"] for m in fake.robot_messages]
    assert max(sum(1 for t in stamps if s <= t < s + 60) for s in stamps) <= 20
    async with bot.svc.tx() as tx:
        assert await tx.outbox.depth() == {}


async def test_webhook_changes_are_short_lines_that_mention_who_must_act(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await webhook_bot(make_bot, sqlite_url, fake, clock)
    await refund(bot)
    dm = ChatInput(
        channel="dingtalk_stream",
        platform="dingtalk",
        user=ding("agent1"),
        text="通过 R1",
        direct=True,
    )
    assert (await ROUTER.handle(bot.svc, dm)).ok
    await bot.drain()
    first, change = fake.robot_messages
    assert first["markdown"]["title"] == "仅退款 R1 · ¥128.00 — 待审核"
    text = change["markdown"]["text"]
    assert text.startswith("**R1** 仅退款 R1 · ¥128.00 → **待主管审批**（agent1 升级主管")
    assert text.endswith(f"@{ding('sup1')} @{ding('sup2')} @{ding('admin1')}")
    assert change["at"]["atUserIds"] == [ding("sup1"), ding("sup2"), ding("admin1")]


async def test_digest_goes_to_webhook_groups_as_markdown(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await webhook_bot(make_bot, sqlite_url, fake, clock)
    await refund(bot)
    async with bot.svc.tx() as tx:
        span = digest.span_for(bot.svc, "", tx.now)
        await tx.notice("aftersales", await digest.build(tx, "aftersales", span))
    await bot.drain()
    sent = fake.robot_messages[-1]
    assert sent["msgtype"] == "markdown"
    assert sent["markdown"]["title"].startswith("售后日报 · ")
    assert "- **新增**：1（已收货 1）" in sent["markdown"]["text"]


async def test_finance_gets_the_payee_by_the_robots_direct_message_and_the_group_never_does(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    group = {"id": "aftersales", "name": "售后一组", "channel": "dingtalk_stream", "chat_id": CHAT}
    settings = ding_settings(
        sqlite_url, fake, groups=[group, {"id": "ops", "name": "管理群", "channel": "sandbox"}]
    )
    bot = await make_bot(settings)
    typed = "打款 补偿 T88001 5 13800138000 王小明 快递破损补偿"
    async with streaming(bot):
        await fake.say(typed, sender_staff_id=ding("agent1"), conversation_id=CHAT)
        await bot.drain()
        await fake.say("收款 P1", sender_staff_id=ding("fin1"), conversation_id=CHAT)
        await fake.say("收款 P1", sender_staff_id=ding("sup1"), conversation_id=CHAT)
        await bot.drain()
    asked, told, refused = replies(fake)
    # DingTalk lets no robot recall a person's message: the agent is asked to.
    assert "请长按那条消息撤回" in asked
    assert "已私信" in told
    assert "财务" in refused
    ((users, param),) = [(m["users"], m["param"]) for m in fake.user_messages]
    assert users == [ding("fin1")]
    assert "13800138000" in param["content"]
    assert "王小明" in param["content"]
    group_side = json.dumps(
        [fake.session_replies, fake.group_messages, [c.params for c in fake.cards.values()]],
        ensure_ascii=False,
    )
    assert "13800138000" not in group_side


async def test_a_reminder_reaches_the_assignee_by_work_notification(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    async with streaming(bot):
        await fake.say("认领 R1", sender_staff_id=ding("agent1"), conversation_id=CHAT)
    await bot.drain()
    assert fake.work_notices == []
    clock.advance(timedelta(hours=30, minutes=1))  # 6 h before the platform's deadline
    await bot.drain()
    texts = [str(m["param"].get("content", "")) for m in fake.group_messages]
    (line,) = [t for t in texts if "距平台自动同意还剩" in t]
    assert line.startswith("@agent1 ⏳ R1（¥128.00）距平台自动同意还剩 6 小时")
    # A claim is no response, so the first-response reminder reaches agent1 as well.
    (notice,) = [n for n in fake.notices_to(ding("agent1")) if "距平台自动同意" in n]
    assert notice.startswith("⏳ R1（¥128.00）距平台自动同意还剩 6 小时")
    assert "来自群「售后一组」" in notice
    assert "@" not in notice
    assert all(n["user"] == ding("agent1") for n in fake.work_notices)


async def test_a_tap_that_escalates_notifies_the_supervisors_apart(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    async with streaming(bot):
        await fake.click(the_card(fake), ding("agent1"), "approve")
    await bot.drain()
    (told,) = group_lines(fake)
    assert "已升级给主管" in told
    notified = {n["user"] for n in fake.work_notices}
    assert notified == {ding("sup1"), ding("sup2"), ding("admin1")}
    assert all("已升级给主管" in n["text"] for n in fake.work_notices)


async def test_a_tap_that_changes_no_card_is_answered_in_the_group(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    card = fake.cards[the_card(fake)]
    assert card.params["templates_visible"] == "true"
    async with streaming(bot):
        await fake.click(the_card(fake), ding("agent1"), "templates")
    (told,) = group_lines(fake)
    assert told.startswith("@agent1 ")
    assert "R1" in told
    assert fake.work_notices == []


async def test_without_an_agent_id_lines_name_people_and_nothing_else_is_sent(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    settings = ding_settings(sqlite_url, fake)
    settings = settings.model_copy(
        update={"dingtalk": settings.dingtalk.model_copy(update={"agent_id": 0})}
    )
    bot = await make_bot(settings)
    await refund(bot)
    async with streaming(bot):
        await fake.click(the_card(fake), ding("agent1"), "approve")
    await bot.drain()
    assert "已升级给主管" in group_lines(fake)[0]
    assert fake.count("POST", "/topapi/message/corpconversation/asyncsend_v2") == 0


async def test_a_group_set_up_before_its_id_is_known_learns_it_when_the_bot_is_mentioned(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    settings = ding_settings(sqlite_url, fake)
    waiting = settings.groups[0].model_copy(update={"chat_id": ""})
    bot = await make_bot(settings.model_copy(update={"groups": [waiting, *settings.groups[1:]]}))
    await refund(bot)
    # The next group that takes refunds has it; the one without its id yet takes none.
    assert fake.cards == {}
    assert [c["handle"] for c in await bot.cards("ops")] == ["R1"]
    async with streaming(bot):
        for _ in range(2):
            await fake.say("帮助", sender_staff_id=ding("admin1"), conversation_id="cidNEW==")
    first, second = replies(fake)
    assert first == second
    assert "本群还没有接入 refundops，本群的 chat_id 是：cidNEW==" in first
    assert first.endswith('id = "aftersales"\nchannel = "dingtalk_stream"\nchat_id = "cidNEW=="')
    assert {r["conversation"] for r in fake.session_replies} == {"cidNEW=="}
    await bot.drain()
    told = [t for t in await bot.texts("ops") if "cidNEW==" in t]
    assert len(told) == 1
    assert "新群「售后一组」（dingtalk_stream）@了机器人" in told[0]
    assert fake.group_messages == []


async def test_what_waits_for_a_group_without_its_id_is_kept_for_later_not_sent(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    settings = ding_settings(sqlite_url, fake)
    waiting = settings.groups[0].model_copy(update={"chat_id": ""})
    bot = await make_bot(
        settings.model_copy(
            update={
                "groups": [waiting],
                "bot": settings.bot.model_copy(update={"admin_group": "aftersales"}),
            }
        )
    )
    await refund(bot)
    async with bot.svc.tx() as tx:
        dead = await tx.session.scalars(select(OutboxItem).where(OutboxItem.state == "dead"))
        (item,) = dead.all()
    assert item.kind == "text"
    assert "没有匹配的群" in item.payload["text"]
    assert "has no chat_id yet: @-mention the bot in that group" in str(item.last_error)
    assert fake.group_messages == []
    assert fake.cards == {}


async def test_a_batch_card_is_a_card_whose_approve_all_can_be_tapped(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    settings = ding_settings(sqlite_url, fake)
    limited = settings.groups[0].model_copy(update={"max_per_minute": 20})
    bot = await make_bot(settings.model_copy(update={"groups": [limited, *settings.groups[1:]]}))
    for i in range(12):
        amount = "40.00" if i % 2 == 0 else "900.00"
        await bot.post_event(make_refund(data_amount=amount, data_order_amount=amount))
    await bot.drain()
    (batch,) = [c for c in fake.cards.values() if c.out_track_id.startswith("notice-F1-")]
    assert batch.template_id == TEMPLATE
    assert batch.params["title"].startswith("⚡")
    assert (batch.params["approve_all_visible"], batch.params["list_visible"]) == ("true", "true")
    assert batch.params["approve_visible"] == "false"
    async with streaming(bot):
        answer = await fake.click(batch.out_track_id, ding("sup1"), "approve_all")
        assert answer == {}
        await fake.wait_for(lambda: group_lines(fake))
    (told,) = group_lines(fake)
    assert told.startswith("@sup1 ✅ 已通过")
    _, case = await bot.get_case("R1")
    assert [h["actor"] for h in case["history"] if h["action"] == "approve"] == ["sup1"]


async def test_a_tap_on_a_batch_card_of_another_deployment_changes_nothing(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await ding_bot(make_bot, sqlite_url, fake)
    await refund(bot)
    fake.cards["notice-F1-0123456789abcdef"] = dataclasses.replace(
        fake.cards[the_card(fake)], out_track_id="notice-F1-0123456789abcdef"
    )
    async with streaming(bot):
        await fake.click("notice-F1-0123456789abcdef", ding("sup1"), "approve_all")
    (told,) = group_lines(fake)
    assert "这张卡片已失效" in told
    _, case = await bot.get_case("R1")
    assert case["state"] == "awaiting_review"

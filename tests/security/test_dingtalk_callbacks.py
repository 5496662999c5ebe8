"""DingTalk HTTP callbacks cannot be replayed, re-bodied or pointed elsewhere.

The robot's `sign` covers only its timestamp, so a captured header pair once let a forged
body approve a ¥1,500 refund as sup1 for an hour, and the bot POSTed its answer to whatever
`sessionWebhook` the body named. Card callbacks were checked with the robot's headers, which
DingTalk does not send for cards (it signs them with the registered apiSecret).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from handlers.clock import FakeClock
from integrations.dingtalk.client import session_webhook_allowed
from integrations.dingtalk.fake import FakeDingtalk
from integrations.dingtalk.models import ROBOT_TOPIC
from integrations.dingtalk.signing import CARD_SIGN_HEADER, CARD_TIMESTAMP_HEADER, card_sign
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.dingtalk import CHAT, ding, ding_settings, running_fake, streaming
from tests.support.fakes import Served, serve


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with running_fake(clock) as running:
        yield running


class Attacker:
    """A server that records whatever reaches it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    async def record(self, request: web.Request) -> web.Response:
        self.received.append((request.path_qs, await request.read()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def attacker() -> AsyncIterator[Served[Attacker]]:
    evil = Attacker()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", evil.record)
    async with serve(app) as base:
        yield Served(evil, base + "/robot/sendBySession?session=stolen")


async def http_bot(make_bot: BotFactory, db_url: str, fake: FakeDingtalk, **kw: Any) -> Bot:
    bot = await make_bot(ding_settings(db_url, fake, channel="dingtalk_http", **kw))
    status, _ = await bot.post_event(
        make_refund(data_amount="1500.00", data_order_amount="1500.00")
    )
    assert status == 202
    await bot.drain()
    return bot


async def post(bot: Bot, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    data = json.dumps(body, ensure_ascii=False).encode()
    return await bot.client.post(path, data=data, headers=headers)


async def approvals(bot: Bot) -> list[str]:
    _, case = await bot.get_case("R1")
    return [h["actor"] for h in case["history"] if h["action"] == "approve"]


def say(fake: FakeDingtalk, text: str, staff: str, **fields: Any) -> dict[str, Any]:
    return fake.robot_message(text, sender_staff_id=ding(staff), conversation_id=CHAT) | fields


async def test_dingtalk_replayed_sign_with_a_forged_body_is_refused(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    captured = fake.robot_headers()
    resp = await post(bot, "/dingtalk/robot", say(fake, "查 R1", "agent1"), captured)
    assert resp.status == 200
    clock.advance(minutes=2)
    forged = say(fake, "通过 R1", "sup1", createAt=int(captured["timestamp"]))
    resp = await post(bot, "/dingtalk/robot", forged, captured)
    assert resp.status == 401
    assert "already used" in (await resp.json())["error"]
    assert await approvals(bot) == []
    assert len(fake.session_replies) == 1


async def test_dingtalk_replay_is_refused_by_another_instance_sharing_redis(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, redis_url: str
) -> None:
    settings = ding_settings(sqlite_url, fake, channel="dingtalk_http", redis={"url": redis_url})
    first = await make_bot(settings)
    second = await make_bot(settings)
    status, _ = await first.post_event(
        make_refund(data_amount="1500.00", data_order_amount="1500.00")
    )
    assert status == 202
    await first.drain()
    captured = fake.robot_headers()
    resp = await post(first, "/dingtalk/robot", say(fake, "查 R1", "agent1"), captured)
    assert resp.status == 200
    forged = say(fake, "通过 R1", "sup1", createAt=int(captured["timestamp"]))
    resp = await post(second, "/dingtalk/robot", forged, captured)
    assert resp.status == 401
    assert await approvals(first) == []


async def test_dingtalk_callbacks_older_than_five_minutes_are_refused_by_default(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    then = fake.now_ms() - 301_000
    old = say(fake, "通过 R1", "sup1", createAt=then)
    resp = await post(bot, "/dingtalk/robot", old, fake.robot_headers(at_ms=then))
    assert resp.status == 401
    assert "300 s" in (await resp.json())["error"]
    assert await approvals(bot) == []


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("createAt", -3_600_000, "createAt"),
        ("createAt", 301_000, "createAt"),
        ("robotCode", "dingOTHERROBOT", "robotCode"),
        ("chatbotCorpId", "dingOTHERCORP", "chatbotCorpId"),
        ("chatbotCorpId", None, "chatbotCorpId"),
        ("senderCorpId", "dingOTHERCORP", "senderCorpId"),
    ],
)
async def test_dingtalk_signed_message_with_a_body_that_is_not_ours_is_refused(
    make_bot: BotFactory,
    sqlite_url: str,
    fake: FakeDingtalk,
    field: str,
    value: Any,
    why: str,
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    message = say(fake, "通过 R1", "sup1")
    if value is None:
        del message[field]
    elif field == "createAt":
        message[field] += value
    else:
        message[field] = value
    resp = await post(bot, "/dingtalk/robot", message, fake.robot_headers())
    assert resp.status == 401
    assert why in (await resp.json())["error"]
    assert await approvals(bot) == []
    assert fake.session_replies == []


async def test_dingtalk_genuine_messages_still_work_without_robot_code_in_the_body(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    message = say(fake, "通过 R1", "sup1", createAt=fake.now_ms() - 2_000)
    del message["robotCode"]  # the receive-message doc's HTTP body has none
    resp = await post(bot, "/dingtalk/robot", message, fake.robot_headers())
    assert resp.status == 200
    assert await approvals(bot) == ["sup1"]


async def test_dingtalk_reply_never_goes_to_a_session_webhook_off_dingtalk_http(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, attacker: Served[Attacker]
) -> None:
    evil, url = attacker
    bot = await http_bot(make_bot, sqlite_url, fake)
    message = say(fake, "查 R1", "fin1", sessionWebhook=url)
    resp = await post(bot, "/dingtalk/robot", message, fake.robot_headers())
    assert resp.status == 200
    assert evil.received == []
    assert fake.session_replies == []
    (answer,) = fake.group_messages
    assert answer["conversation"] == CHAT
    assert str(answer["param"]["content"]).startswith("@fin1 【仅退款 R1 · ¥1,500.00】")


async def test_dingtalk_reply_never_goes_to_a_session_webhook_off_dingtalk_stream(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, attacker: Served[Attacker]
) -> None:
    evil, url = attacker
    bot = await make_bot(ding_settings(sqlite_url, fake))
    message = say(fake, "帮助", "agent1", sessionWebhook=url)
    async with streaming(bot):
        await fake.acked(await fake.push(ROBOT_TOPIC, message))
    assert evil.received == []
    (answer,) = fake.group_messages
    assert str(answer["param"]["content"]).startswith("@agent1 可用命令")


@pytest.mark.parametrize(
    "url",
    [
        "https://oapi.dingtalk.com.evil.example/robot/sendBySession?session=x",
        "https://evil.example/robot/sendBySession?session=x&h=oapi.dingtalk.com",
        "http://oapi.dingtalk.com/robot/sendBySession?session=x",
        "https://oapi.dingtalk.com:8443/robot/sendBySession?session=x",
        "https://user:pw@oapi.dingtalk.com/robot/sendBySession?session=x",
        "https://oapi.dingtalk.com/robot/send?access_token=x",
        "https://oapi.dingtalk.com/robot/sendBySession/../send?session=x",
        "//oapi.dingtalk.com/robot/sendBySession?session=x",
        "",
    ],
)
def test_dingtalk_session_webhook_must_be_dingtalks_own(url: str) -> None:
    assert not session_webhook_allowed(url, "https://oapi.dingtalk.com")
    assert not session_webhook_allowed(url, "http://127.0.0.1:9")


def test_dingtalk_session_webhook_on_dingtalk_or_the_configured_oapi_base_is_used() -> None:
    url = "https://oapi.dingtalk.com/robot/sendBySession?session=c610ee93"
    assert session_webhook_allowed(url, "https://oapi.dingtalk.com")
    assert session_webhook_allowed(url, "http://127.0.0.1:9")
    fake = "http://127.0.0.1:9/robot/sendBySession?session=c610ee93"
    assert session_webhook_allowed(fake, "http://127.0.0.1:9/")
    assert not session_webhook_allowed(fake, "http://127.0.0.1:10")
    assert not session_webhook_allowed(fake, "https://oapi.dingtalk.com")


# -- card callbacks in HTTP mode ------------------------------------------------------------


def card_click(fake: FakeDingtalk, staff: str, action: str, **fields: Any) -> dict[str, Any]:
    (card,) = fake.cards.values()
    return fake.click_payload(card.out_track_id, ding(staff), action) | fields


def both_headers(fake: FakeDingtalk) -> dict[str, str]:
    """The card callback signed as DingTalk signs cards, plus robot headers (which an
    attacker may have captured from a robot message)."""
    (card,) = fake.cards.values()
    return fake.card_headers(card.out_track_id) | fake.robot_headers()


async def test_dingtalk_card_tap_signed_with_the_api_secret_is_accepted_once(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk, clock: FakeClock
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    (card,) = fake.cards.values()
    captured = fake.card_headers(card.out_track_id)
    resp = await post(bot, "/dingtalk/card", card_click(fake, "agent1", "claim"), captured)
    assert resp.status == 200
    assert (await resp.json())["cardData"]["cardParamMap"]["footer"].startswith("agent1 认领")
    clock.advance(seconds=30)
    resp = await post(bot, "/dingtalk/card", card_click(fake, "sup1", "approve"), captured)
    assert resp.status == 401
    assert await approvals(bot) == []


async def test_dingtalk_card_route_refuses_robot_headers(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    captured = fake.robot_headers()
    resp = await post(bot, "/dingtalk/robot", say(fake, "查 R1", "agent1"), captured)
    assert resp.status == 200
    resp = await post(bot, "/dingtalk/card", card_click(fake, "sup1", "approve"), captured)
    assert resp.status == 401
    assert CARD_SIGN_HEADER in (await resp.json())["error"]
    assert await approvals(bot) == []


async def test_dingtalk_card_tap_from_another_corp_is_refused(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    forged = card_click(fake, "sup1", "approve", corpId="dingOTHERCORP")
    resp = await post(bot, "/dingtalk/card", forged, both_headers(fake))
    assert resp.status == 401
    assert "corpId" in (await resp.json())["error"]
    assert await approvals(bot) == []


async def test_dingtalk_card_tap_on_a_card_that_is_not_ours_is_refused(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    forged = card_click(fake, "sup1", "approve", outTrackId="refund-R1")
    (registered,) = fake.registrations.values()
    ts = str(fake.now_ms())
    headers = fake.robot_headers() | {
        CARD_TIMESTAMP_HEADER: ts,
        CARD_SIGN_HEADER: card_sign(str(registered["apiSecret"]), ts),
    }
    resp = await post(bot, "/dingtalk/card", forged, headers)
    assert resp.status == 404
    assert await approvals(bot) == []


async def test_dingtalk_card_timestamps_in_seconds_are_read_as_seconds(
    make_bot: BotFactory, sqlite_url: str, fake: FakeDingtalk
) -> None:
    bot = await http_bot(make_bot, sqlite_url, fake)
    (card,) = fake.cards.values()
    (registered,) = fake.registrations.values()
    secret = str(registered["apiSecret"])
    now_s = fake.now_ms() // 1000
    for ts, status in ((now_s - 400, 401), (now_s, 200)):
        headers = {CARD_TIMESTAMP_HEADER: str(ts), CARD_SIGN_HEADER: card_sign(secret, ts)}
        click = card_click(fake, "agent1", "claim")
        assert (await post(bot, "/dingtalk/card", click, headers)).status == status
    assert card.params["footer"].startswith("agent1 认领")

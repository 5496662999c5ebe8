"""Inbound input while Redis is unreachable: what cannot be deduplicated is not acted on and
its sender is told to try again (HTTP 503 with Retry-After, or a busy reply on the AI bot's
socket); nothing is half done, and the retry after the outage is handled once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.settings import Settings
from handlers.clock import FakeClock
from handlers.message import Reply
from integrations.dingtalk.signing import sign
from integrations.wecom.aibot import BUSY, AibotChannel
from integrations.wecom.fake import FakeWeComAIBot
from integrations.wecom.models import Inbound, Outcome
from storage.redis_coordination import RedisCoordination
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.dingtalk import CHAT, ding, ding_settings, running_fake
from tests.support.fakes import Served, serve
from tests.support.redis_proxy import RedisProxy, redis_proxy

pytestmark = pytest.mark.redis


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    async with redis_proxy(redis_url) as p:
        yield p


def signed(clock: FakeClock, secret: str) -> dict[str, str]:
    ts = int(clock.now().timestamp() * 1000)
    return {"timestamp": str(ts), "sign": sign(secret, ts), "Content-Type": "application/json"}


async def test_redis_down_dingtalk_callback_is_answered_503_and_not_acted_on(
    make_bot: BotFactory, sqlite_url: str, clock: FakeClock, proxy: RedisProxy
) -> None:
    async with running_fake(clock) as fake:
        settings = ding_settings(
            sqlite_url, fake, channel="dingtalk_http", redis={"url": proxy.url}
        )
        bot = await make_bot(settings)
        status, _ = await bot.post_event(make_refund())
        assert status == 202
        await bot.drain()
        message = fake.robot_message(
            "认领 R1", sender_staff_id=ding("agent1"), conversation_id=CHAT
        )
        body = json.dumps(message, ensure_ascii=False).encode()

        await proxy.cut()
        refused = signed(clock, fake.app_secret)
        resp = await bot.client.post("/dingtalk/robot", data=body, headers=refused)
        assert resp.status == 503
        assert resp.headers["Retry-After"].isdigit()
        assert await history(bot) == []
        assert fake.session_replies == []

        proxy.restore()
        # DingTalk's retry of the refused request is taken; a later duplicate of the same
        # message (newly signed) is recognised and not acted on again.
        retry = await bot.client.post("/dingtalk/robot", data=body, headers=refused)
        assert retry.status == 200
        clock.advance(seconds=1)
        again = await bot.client.post(
            "/dingtalk/robot", data=body, headers=signed(clock, fake.app_secret)
        )
        assert again.status == 200
        assert await history(bot) == ["claim"]
        assert len(fake.session_replies) == 1


async def history(bot: Bot) -> list[str]:
    status, case = await bot.get_case("R1")
    assert status == 200
    return [h["action"] for h in case["history"] if h["action"] == "claim"]


@pytest.fixture
async def aibot() -> AsyncIterator[Served[FakeWeComAIBot]]:
    fake = FakeWeComAIBot(chats={"wrkGROUP1"})
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/")


async def test_redis_down_aibot_message_gets_a_busy_reply_and_runs_nothing(
    proxy: RedisProxy, aibot: Served[FakeWeComAIBot]
) -> None:
    fake, ws_url = aibot
    settings = Settings(
        groups=[{"id": "aftersales", "channel": "wecom_aibot", "chat_id": "wrkGROUP1"}],
        wecom={
            "aibot": {
                "bot_id": fake.bot_id,
                "secret": fake.secret,
                "ws_url": ws_url,
            }
        },
    )
    seen: list[Inbound] = []

    async def handle(inbound: Inbound) -> Outcome:
        seen.append(inbound)
        return Outcome(Reply("ok"))

    coord = await RedisCoordination.connect(proxy.url)
    async with aiohttp.ClientSession() as session:
        channel = AibotChannel(session, settings, coord, handle)
        task = asyncio.create_task(channel.run())
        try:
            async with asyncio.timeout(5):
                await channel.authenticated.wait()
            await proxy.cut()
            req_id = await fake.push_text("zhangsan", "通过 R1", chatid="wrkGROUP1")
            await fake.wait_for(lambda: fake.replies.get(req_id))
            (answer,) = fake.replies[req_id]
            assert BUSY in answer["stream"]["content"]
            assert seen == []
            proxy.restore()
            again = await fake.push_text("zhangsan", "通过 R1", chatid="wrkGROUP1")
            await fake.wait_for(lambda: fake.replies.get(again))
            assert [i.text for i in seen] == ["通过 R1"]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await coord.close()

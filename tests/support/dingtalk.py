"""Test helpers for DingTalk: the fake on port 0, settings pointing at it, a running stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.keys import DISPATCHER
from bot.settings import Settings
from handlers.clock import FakeClock
from integrations.dingtalk.channel import DingtalkStreamChannel
from integrations.dingtalk.fake import FakeDingtalk
from tests.support.app import STAFF, Bot, make_settings
from tests.support.fakes import serve

CHAT = "cidAFTERSALES=="
ROBOT_SECRET = "SEC1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcd"
TEMPLATE = "refundops-refund.schema"


@contextlib.asynccontextmanager
async def running_fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    fake = FakeDingtalk(now=lambda: clock.now().timestamp())
    async with serve(fake.app()) as fake.base_url:
        try:
            yield fake
        finally:
            for conn in fake.live():
                await conn.ws.close()


def ding(staff_id: str) -> str:
    """The DingTalk staffId the tests give a staff member."""
    return f"ding-{staff_id}"


def ding_settings(
    db_url: str, fake: FakeDingtalk, channel: str = "dingtalk_stream", **overrides: Any
) -> Settings:
    group: dict[str, Any] = {
        "id": "aftersales",
        "name": "售后一组",
        "channel": channel,
        "chat_id": CHAT,
        "kinds": ["refund"],
    }
    if channel == "dingtalk_webhook":
        group |= {"chat_id": "", "webhook_url": fake.add_robot(ROBOT_SECRET)}
        group["webhook_secret"] = ROBOT_SECRET
    data: dict[str, Any] = {
        "groups": [group, {"id": "ops", "name": "管理群", "channel": "sandbox"}],
        "staff": [{**s, "dingtalk_staff_id": ding(str(s["id"]))} for s in STAFF],
        "dingtalk": {
            "app_key": fake.app_key,
            "app_secret": fake.app_secret,
            "corp_id": fake.corp_id,
            "robot_code": fake.robot_code,
            "agent_id": fake.agent_id,
            "card_template_id": TEMPLATE,
            "api_base": fake.base_url.rstrip("/"),
            "oapi_base": fake.base_url.rstrip("/"),
            "stream_backoff_base_s": 0.02,
            "stream_backoff_max_s": 0.1,
        },
        "server": {"public_base_url": "https://refundops.example.com"},
    }
    return make_settings(db_url, **(data | overrides))


def stream_of(bot: Bot) -> DingtalkStreamChannel:
    channel = bot.app[DISPATCHER].channels["dingtalk_stream"]
    assert isinstance(channel, DingtalkStreamChannel)
    return channel


@contextlib.asynccontextmanager
async def streaming(bot: Bot) -> AsyncIterator[DingtalkStreamChannel]:
    """Run the stream channel's loop (lifecycle does this when workers run) until the block ends."""
    channel = stream_of(bot)
    task = asyncio.create_task(channel.run())
    try:
        await asyncio.wait_for(channel.stream.connected.wait(), 5)
        yield channel
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

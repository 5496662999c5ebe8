"""Shared pieces of the WeCom tests: the official vector's keys, staff with WeCom ids, settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.keys import DISPATCHER
from bot.settings import Settings
from handlers.clock import FakeClock
from integrations.wecom.aibot import AibotChannel
from integrations.wecom.fake import FakeWeComAIBot, FakeWeComAPI
from storage.coordination import InProcessCoordination
from tests.support.app import STAFF, Bot, BotFactory, make_settings

# Doc 91144's official test vector.
TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
URL_CHECK = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
URL_ECHO = "1616140317555161061"
MESSAGE = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
MESSAGE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj91"
    "1L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdn"
    "LxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BC"
    "A9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZp"
    "S+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

# The test staff, each with a WeCom userid ("wx_" + id).
WECOM_STAFF = [{**s, "name": str(s["id"]).upper(), "wecom_userid": f"wx_{s['id']}"} for s in STAFF]


def userid(staff_id: str) -> str:
    return f"wx_{staff_id}"


def wecom_settings(db_url: str, groups: list[dict[str, Any]], **overrides: Any) -> Settings:
    """Test settings with WeCom groups, WeCom staff, and the vector's app callback keys."""
    wecom: dict[str, Any] = {
        "corp_id": CORP_ID,
        "agent_id": 1000002,
        "secret": "app-secret",
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "aibot": {
            "bot_id": "aibot-fake",
            "secret": "aibot-secret",
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
        },
    }
    for key, value in overrides.pop("wecom", {}).items():
        wecom[key] = {**wecom[key], **value} if isinstance(wecom.get(key), dict) else value
    staff = overrides.pop("staff", WECOM_STAFF)
    return make_settings(db_url, groups=groups, staff=staff, wecom=wecom, **overrides)


AIBOT_CHAT = "wrkSFfCgAAgroup1"


def coordination(clock: FakeClock) -> InProcessCoordination:
    """Token buckets and caches on the test clock, so advancing it refills them."""
    return InProcessCoordination(monotonic=lambda: clock.now().timestamp())


@contextlib.asynccontextmanager
async def aibot_group(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    api: FakeWeComAPI,
    ws_url: str,
    kinds: tuple[str, ...] = ("refund",),
) -> AsyncIterator[Bot]:
    """A bot whose refunds (the case `kinds`) go to an AI-bot group (connected to `ws_url`),
    the rest to a robot."""
    settings = wecom_settings(
        sqlite_url,
        [
            {
                "id": "aftersales",
                "channel": "wecom_aibot",
                "chat_id": AIBOT_CHAT,
                "kinds": list(kinds),
            },
            {"id": "ops", "channel": "wecom_webhook", "webhook_url": api.webhook_url("ops-key")},
        ],
        wecom={"api_base": api.base_url, "aibot": {"ws_url": ws_url}},
    )
    bot = await make_bot(settings, coord=coordination(clock))
    channel = bot.app[DISPATCHER].channels["wecom_aibot"]
    assert isinstance(channel, AibotChannel)
    task = asyncio.create_task(channel.run())
    async with asyncio.timeout(5):
        await channel.authenticated.wait()
    try:
        yield bot
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def markdowns(fake: FakeWeComAIBot, chat: str = AIBOT_CHAT) -> list[str]:
    """The markdown lines the AI bot sent to `chat`, oldest first."""
    return [
        b["markdown"]["content"]
        for c, b in fake.messages
        if c == chat and b["msgtype"] == "markdown"
    ]

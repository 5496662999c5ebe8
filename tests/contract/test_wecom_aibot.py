"""AibotChannel against FakeWeComAIBot: the SDK's frames, acks, heartbeat, reconnects, dedup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.settings import Settings
from handlers.config import GroupSettings
from handlers.errors import RetryableError, ThrottledError
from handlers.message import Card, Reply, Tone
from integrations.wecom.aibot import AibotChannel
from integrations.wecom.fake import FakeWeComAIBot
from integrations.wecom.models import Inbound, Outcome
from storage.coordination import InProcessCoordination
from tests.support.fakes import serve

CHAT = "wrkGROUP1"


def card(version: int = 2, state: str = "awaiting_review", status: str = "待审核") -> Card:
    return Card(
        case_pk=1,
        case_id="RF1",
        handle="R1",
        kind="refund",
        state=state,
        version=version,
        title="仅退款 R1 · ¥128.00",
        status=status,
        tone=Tone.WARNING,
    )


class Harness:
    def __init__(self, fake: FakeWeComAIBot, channel: AibotChannel) -> None:
        self.fake = fake
        self.channel = channel
        self.seen: list[Inbound] = []
        self.answer: Callable[[Inbound], Awaitable[Outcome]] = self.default

    async def default(self, inbound: Inbound) -> Outcome:
        if inbound.key:
            return Outcome(Reply("ok"), card(3, "approved", "已通过"), changed=True)
        return Outcome(Reply(f"收到：{inbound.text}"))

    async def handle(self, inbound: Inbound) -> Outcome:
        self.seen.append(inbound)
        return await self.answer(inbound)


@contextlib.asynccontextmanager
async def running(**aibot: Any) -> AsyncIterator[Harness]:
    fake = FakeWeComAIBot(chats={CHAT})
    async with serve(fake.app()) as base, aiohttp.ClientSession() as session:
        settings = Settings(
            groups=[{"id": "aftersales", "channel": "wecom_aibot", "chat_id": CHAT}],
            staff=[{"id": "sup1", "roles": ["supervisor"], "wecom_userid": "zhangsan"}],
            wecom={
                "aibot": {
                    "bot_id": fake.bot_id,
                    "secret": fake.secret,
                    "ws_url": base + "/",
                    "reconnect_base_s": 0.02,
                    "reconnect_max_s": 0.08,
                    **aibot,
                }
            },
        )
        harness = Harness(
            fake,
            AibotChannel(session, settings, InProcessCoordination(), lambda i: harness.handle(i)),
        )
        task = asyncio.create_task(harness.channel.run())
        try:
            yield harness
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def online(h: Harness, subscriptions: int = 1) -> None:
    """Wait for the `subscriptions`-th subscription to be up on both sides."""
    await h.fake.wait_for(lambda: h.fake.subscribed >= subscriptions and h.fake.online)
    async with asyncio.timeout(5):
        await h.channel.authenticated.wait()


async def test_subscribes_with_the_sdk_frame_and_pings() -> None:
    async with running(heartbeat_s=0.05) as h:
        await online(h)
        first = h.fake.frames[0]
        assert first["cmd"] == "aibot_subscribe"
        assert first["headers"]["req_id"].startswith("aibot_subscribe_")
        assert first["body"] == {"bot_id": "aibot-fake", "secret": "aibot-secret"}
        await h.fake.wait_for(lambda: h.fake.pings >= 3)
        pings = [f for f in h.fake.frames if f.get("cmd") == "ping"]
        assert all(
            set(p) == {"cmd", "headers"} and p["headers"]["req_id"].startswith("ping_")
            for p in pings
        )
        assert h.fake.connections == 1, "acknowledged pings keep the connection"


async def test_unanswered_pings_mean_a_dead_connection_and_a_reconnect() -> None:
    async with running(heartbeat_s=0.05) as h:
        await online(h)
        h.fake.ack_pings = False
        await online(h, 2)
        assert h.fake.pings >= 2
        h.fake.ack_pings = True


async def test_reconnects_with_exponential_backoff() -> None:
    async with running() as h:
        await online(h)
        h.fake.secret = "rotated"  # from now on every subscription is refused
        await h.fake.drop()
        await h.fake.wait_for(lambda: h.fake.connections >= 5, within=5)
        # A connection that had subscribed starts the backoff over; refusals double it to the cap.
        assert h.channel.waits[:4] == [0.02, 0.04, 0.08, 0.08]
        assert h.fake.subscribed == 1
        assert not h.channel.authenticated.is_set()
        h.fake.secret = "aibot-secret"
        await online(h, 2)
        h.channel.waits.clear()
        await h.fake.drop()
        await online(h, 3)
        assert h.channel.waits == [0.02]


async def test_a_message_is_answered_on_its_req_id_and_duplicates_are_ignored() -> None:
    async with running() as h:
        await online(h)
        req_id = await h.fake.push_text("zhangsan", "@bot 查 R1", chatid=CHAT, msgid="m1")
        await h.fake.wait_for(lambda: h.fake.replies.get(req_id))
        (reply,) = h.fake.replies[req_id]
        assert reply["msgtype"] == "stream"
        assert reply["stream"]["finish"] is True
        # The echoed words are the person's: shown as typed, never read as markup or a mention.
        assert reply["stream"]["content"] == "收到：＠bot 查 R1"
        again = await h.fake.push_text("zhangsan", "@bot 查 R1", chatid=CHAT, msgid="m1")
        await h.fake.push_text("zhangsan", "second", chatid=CHAT, msgid="m2")
        await h.fake.wait_for(lambda: len(h.seen) == 2 and len(h.fake.replies) == 2)
        assert again not in h.fake.replies
        assert [i.text for i in h.seen] == ["@bot 查 R1", "second"]
        assert h.seen[0].group_id == "aftersales"
        assert h.seen[0].conversation == CHAT

        elsewhere = await h.fake.push_text("zhangsan", "帮助", chatid="wrkNEWGROUP")
        await h.fake.wait_for(lambda: h.fake.replies.get(elsewhere))
        answer = h.fake.replies[elsewhere][0]["stream"]["content"]
        # The setup hint first (a long answer never cuts it off), then the answer itself.
        assert answer.startswith("本群还没有接入 refundops，本群的 chat_id 是：wrkNEWGROUP\n")
        assert answer.endswith("\n\n收到：帮助")
        # The config lines copy out as they are: nothing escaped, nothing invisible in front.
        assert '\nchannel = "wecom_aibot"\nchat_id = "wrkNEWGROUP"\n' in answer
        assert "\u200b" not in answer
        assert h.seen[-1].group_id == ""
        single = await h.fake.push_text("zhangsan", "帮助")
        await h.fake.wait_for(lambda: h.fake.replies.get(single))
        assert h.fake.replies[single][0]["stream"]["content"] == "收到：帮助"
        assert h.seen[-1].conversation == "zhangsan"


async def test_a_click_updates_its_card_within_the_window_only() -> None:
    async with running() as h:
        await online(h)
        group = GroupSettings(id="aftersales", channel="wecom_aibot", chat_id=CHAT)
        placed = await h.channel.deliver_card(group, card(), None)
        task_id = placed.ref
        assert h.fake.button_keys(CHAT, task_id) == ["show:R1:2"]
        req_id = await h.fake.click("zhangsan", CHAT, task_id, "show:R1:2")
        await h.fake.wait_for(lambda: h.fake.updates)
        ((updated_req, body),) = h.fake.updates
        assert updated_req == req_id
        assert body["response_type"] == "update_template_card"
        assert h.fake.card(CHAT, task_id)["main_title"]["desc"] == "已通过"
        assert h.seen[-1].key == "show:R1:2"
        assert h.seen[-1].task_id == task_id

        async def slow(_inbound: Inbound) -> Outcome:
            await asyncio.sleep(0.2)
            return Outcome(Reply("没有权限", ok=False), card(4, "refunded", "已退款"), changed=True)

        h.answer = slow
        h.channel.update_window_s = 0.1
        await h.fake.click("zhangsan", CHAT, task_id, "approve:R1:3")
        await h.fake.wait_for(lambda: h.fake.messages[-1][1]["msgtype"] == "markdown")
        assert len(h.fake.updates) == 1, "too late for an update: none is attempted"
        content = h.fake.messages[-1][1]["markdown"]["content"]
        assert content == "<@zhangsan> 没有权限\n📌 R1 更新：已退款"


async def test_a_late_update_is_refused_by_wecom() -> None:
    async with running() as h:
        await online(h)
        group = GroupSettings(id="aftersales", channel="wecom_aibot", chat_id=CHAT)
        task_id = (await h.channel.deliver_card(group, card(), None)).ref

        async def late(_inbound: Inbound) -> Outcome:
            h.fake.now = lambda: 1e9  # WeCom's clock moves on while we work
            return Outcome(Reply("ok"), card(3), changed=True)

        h.answer = late
        await h.fake.click("zhangsan", CHAT, task_id, "approve:R1:2")
        await h.fake.wait_for(lambda: h.fake.refused)
        assert h.fake.refused[-1][1] == 846605


async def test_sends_fail_cleanly_when_offline_or_throttled() -> None:
    async with running() as h:
        group = GroupSettings(id="aftersales", channel="wecom_aibot", chat_id=CHAT)
        await online(h)
        h.fake.fail_send = [45009]
        with pytest.raises(ThrottledError):
            await h.channel.deliver_text(group, "hi", ())
        h.fake.secret = "rotated"
        await h.fake.drop()
        await h.fake.wait_for(lambda: not h.fake.online)
        with pytest.raises(RetryableError):
            await h.channel.deliver_card(group, card(), None)


async def test_enter_chat_gets_a_welcome() -> None:
    async with running() as h:
        await online(h)
        req_id = await h.fake.enter_chat("zhangsan")
        await h.fake.wait_for(lambda: h.fake.replies.get(req_id))
        assert h.fake.replies[req_id][0]["msgtype"] == "text"
        assert "帮助" in h.fake.replies[req_id][0]["text"]["content"]

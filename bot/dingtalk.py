"""DingTalk wiring: the three channels' factories, and what an @-message or a card tap becomes.

Both ways in (the stream websocket and the HTTP callbacks) hand verified, parsed input to
`DingtalkInbound`: deduplicate on the message id, run the command, answer the person.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aiohttp import web

from bot.dispatch import queue_notify
from bot.keys import DISPATCHER, HTTP, METRICS, SERVICES
from commands import ChatInput
from handlers import onboarding
from handlers.cards import build_card
from handlers.channel import Channel
from handlers.config import GroupSettings
from handlers.errors import ExternalError, ThrottledError
from handlers.message import Reply
from integrations.dingtalk.channel import (
    DingtalkChannel,
    DingtalkStreamChannel,
    DingtalkWebhookChannel,
)
from integrations.dingtalk.client import CustomRobot, DingtalkClient
from integrations.dingtalk.models import (
    CardCallback,
    CardCallbackAnswer,
    CardData,
    RobotMessage,
)
from integrations.dingtalk.render import card_params
from storage.coordination import CoordinationError

log = logging.getLogger(__name__)

DEDUP_TTL_S = 2 * 3600
UNKNOWN_CARD = "这张卡片已失效，请输入「待办」或「查 单号」查看最新状态"


class DingtalkInbound:
    def __init__(self, app: web.Application, channel: DingtalkChannel) -> None:
        self.app = app
        self.channel = channel

    async def on_robot_message(self, message: RobotMessage) -> None:
        svc = self.app[SERVICES]
        # The HTTP sign covers only the timestamp and the stream redelivers unacked frames.
        if not await svc.coord.first_seen(f"dingtalk:msg:{message.msg_id}", DEDUP_TTL_S):
            log.info("dingtalk message %s again; ignored", message.msg_id)
            return
        group = self.group(message.conversation_id) if message.is_group else None
        unknown = message.is_group and group is None
        if unknown:
            # How an admin finds the openConversationId a [[groups]] chat_id needs.
            log.warning(
                "dingtalk group %r (openConversationId %s) is not in [[groups]] as %s",
                message.conversation_title,
                message.conversation_id,
                self.channel.name,
            )
            async with svc.tx() as tx:
                await onboarding.tell_admins(
                    tx, self.channel.name, message.conversation_id, message.conversation_title
                )
        chat = ChatInput(
            channel=self.channel.name,
            platform="dingtalk",
            user=message.sender_staff_id,
            text=message.command_text,
            group_id=group.id if group else "",
            input_id=message.msg_id,
            direct=not message.is_group,
        )
        reply = await self._run(chat)
        if unknown:
            hint = onboarding.unknown_group_hint(
                svc.settings, self.channel.name, message.conversation_id
            )
            reply = dataclasses.replace(reply, text=f"{reply.text}\n\n{hint}")
        try:
            await self.channel.reply(message, reply)
        except (ExternalError, ThrottledError, CoordinationError) as exc:
            log.warning("reply to dingtalk message %s failed: %s", message.msg_id, exc)
            if group is not None:
                async with svc.tx() as tx:
                    await tx.post(
                        group.id, reply.text, key=f"reply:{message.msg_id}", mentions=reply.mentions
                    )

    async def on_card_callback(self, callback: CardCallback) -> dict[str, Any] | None:
        """Run the tapped button's command; answer with the card as it now is.

        The card is found by the outTrackId stored with it, never by what its buttons carry:
        another deployment on the same DingTalk app has its own R1."""
        svc = self.app[SERVICES]
        async with svc.tx() as tx:
            placement = await tx.cards.by_ref(self.channel.name, callback.out_track_id)
            case = await tx.cases.get(placement.case_pk) if placement is not None else None
        if placement is None or case is None:
            notice = await self.channel.notice_card_ref(callback.out_track_id)
            if notice is not None and callback.action:
                await self._notice_tap(callback, *notice)
                return None
            log.warning("dingtalk card tap on %s: not a card of ours", callback.out_track_id)
            await self._unknown_card(callback)
            return None
        group = svc.settings.group(placement.group_id) or self.group(callback.space_id)
        if not callback.action:
            log.warning("dingtalk card tap without action: %s", callback)
            return None
        # A card from an older template sends no version: the one last delivered to this
        # card instance is what DingTalk shows.
        drawn = callback.card_version
        if drawn is None:
            drawn = placement.version if placement is not None else 0
        chat = ChatInput(
            channel=self.channel.name,
            platform="dingtalk",
            user=callback.user_id,
            group_id=group.id if group else "",
            action=callback.action,
            case_ref=case.handle,
            input_id=f"card:{callback.out_track_id}:{callback.user_id}",
            card_version=drawn,
        )
        reply = await self._run(chat)
        await self.app[DISPATCHER].flush_case(case.id)
        async with svc.tx() as tx:
            fresh = await tx.cases.get(case.id)
            card = build_card(fresh, tx.view) if fresh is not None else None
        # The card changing is the answer to a tap; words only when it cannot say it all: a
        # refusal, someone to call, or a tap that changed nothing (常用回复, a list).
        if not reply.ok or reply.mentions or card is None or card.version == case.version:
            await self._tell(callback, group, reply)
        if card is None:
            return None
        return CardCallbackAnswer(card_data=CardData(card_param_map=card_params(card))).dump()

    async def _notice_tap(self, callback: CardCallback, group_id: str, ref: str) -> None:
        """A tap on a batch card (全部通过 F3, 列表 F3): the card stays, the answer is a line."""
        group = self.app[SERVICES].settings.group(group_id)
        chat = ChatInput(
            channel=self.channel.name,
            platform="dingtalk",
            user=callback.user_id,
            group_id=group.id if group else "",
            action=callback.action,
            case_ref=ref,
            input_id=f"card:{callback.out_track_id}:{callback.user_id}",
        )
        await self._tell(callback, group, await self._run(chat))

    async def _unknown_card(self, callback: CardCallback) -> None:
        """Tell whoever tapped a card we do not know, in one of our groups only."""
        group = self.group(callback.space_id)
        if group is not None:
            await self._tell(callback, group, Reply(UNKNOWN_CARD, ok=False))

    async def _tell(
        self, callback: CardCallback, group: GroupSettings | None, reply: Reply
    ) -> None:
        try:
            await self.channel.tell(callback, group.chat_id if group else "", reply)
        except (ExternalError, ThrottledError, CoordinationError) as exc:
            log.warning("answer to a tap on %s failed: %s", callback.out_track_id, exc)
            return
        svc = self.app[SERVICES]
        tapper = svc.staff.by_platform("dingtalk", callback.user_id)
        others = tuple(m for m in reply.mentions if tapper is None or m.staff_id != tapper.id)
        if group is not None and others and self.channel.capabilities.notifies_apart:
            # The group line names them without an @: they are told apart.
            at_ms = int(svc.clock.now().timestamp() * 1000)
            async with svc.tx() as tx:
                key = f"tap:{callback.out_track_id}:{callback.user_id}:{at_ms}"
                await queue_notify(tx, group.id, reply.text, others, key=key)

    def group(self, chat_id: str) -> GroupSettings | None:
        return next(
            (
                g
                for g in self.app[SERVICES].settings.groups
                if g.channel == self.channel.name and g.chat_id == chat_id and chat_id
            ),
            None,
        )

    async def _run(self, chat: ChatInput) -> Reply:
        reply = await self.app[SERVICES].commands.handle(self.app[SERVICES], chat)
        self.app[METRICS].commands.labels(chat.channel, "ok" if reply.ok else "refused").inc()
        return reply


def _client(app: web.Application) -> DingtalkClient:
    svc = app[SERVICES]
    return DingtalkClient(app[HTTP], svc.settings.dingtalk, svc.coord)


def stream_channel(app: web.Application) -> Channel:
    svc = app[SERVICES]
    return DingtalkStreamChannel(
        svc.settings,
        _client(app),
        svc.clock,
        svc.coord,
        lambda channel: DingtalkInbound(app, channel),
    )


def http_channel(app: web.Application) -> DingtalkChannel:
    svc = app[SERVICES]
    return DingtalkChannel(svc.settings, _client(app), svc.clock, svc.coord)


def webhook_channel(app: web.Application) -> Channel:
    svc = app[SERVICES]
    ding = svc.settings.dingtalk
    robot = CustomRobot(app[HTTP], svc.clock, ding.timeout_s, ding.robot_mute_s)
    return DingtalkWebhookChannel(svc.settings, robot, svc.clock, svc.coord)

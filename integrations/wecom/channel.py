"""The HTTP-side WeCom channels: the self-built app (cards by DM), group webhooks, and the
AI bot's HTTP mode (which cannot post by itself, so its group's webhook carries new cards).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from handlers.authority import StaffDirectory
from handlers.channel import Budget, Capabilities, CardRef, MentionBy, Placement, followup_due
from handlers.clock import Clock
from handlers.config import DomainSettings, GroupSettings
from handlers.errors import PermanentError
from handlers.message import Card, Mention, Notice
from integrations.channel import ChannelDefaults
from integrations.wecom import render
from integrations.wecom.client import WebhookClient, WeComClient

log = logging.getLogger(__name__)

# A response code works once, for 72 h (doc 94888); keep a margin.
CODE_LIFETIME = timedelta(hours=71)


def webhook_budget(limit_per_min: int) -> Budget:
    """`limit_per_min` as a bucket no 60 s window can exceed: burst + a minute's refill = limit."""
    burst = limit_per_min // 4
    return Budget(per_minute=limit_per_min - burst, burst=burst)


class WecomAppChannel(ChannelDefaults):
    """`wecom_app`: cards go by DM to the group's `chat_id` list (`sup1|sup2`: staff ids or userids)."""

    name = "wecom_app"
    capabilities = Capabilities(
        edits_in_place=True,
        mentions_by=MentionBy.NAME,
        needs_response_code=True,
        direct_only=True,
        replies_later=True,
        direct_messages=True,
    )

    def __init__(self, client: WeComClient, settings: DomainSettings, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.source = settings.bot.name
        self.userids = StaffDirectory(settings.staff).accounts("wecom")

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        # message/send allows 30 a minute per member per app; every card goes to each member.
        return webhook_budget(30)

    def update_sends(self, card: Card, placement: CardRef) -> bool:
        # update_template_card edits what was sent; only a line after it counts as a send.
        return not self.stale(card, placement) and followup_due(placement, card)

    def touser(self, group: GroupSettings) -> str:
        return "|".join(self.userids.get(p, p) for p in group.chat_id.split("|") if p.strip())

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        touser = self.touser(group)
        if placement is None or not placement.ref:
            task_id = render.new_task_id(card)
            rendered = render.template_card(card, task_id, source=self.source)
            sent = await self.client.send_card(touser, rendered)
            return Placement(
                task_id,
                {
                    "msgid": sent.msgid,
                    "response_code": sent.response_code,
                    "code_at": self.clock.now().isoformat(),
                    "state": card.state,
                    "drawn": card.version,
                },
            )
        if placement.version >= card.version:
            return Placement(placement.ref)
        try:
            redrawn = await self.redraw(card, placement)
        except PermanentError as exc:
            log.warning("card %s not updated in place (%s); a line follows", card.handle, exc)
            redrawn = None
        if redrawn is not None:
            return redrawn
        if followup_due(placement, card):
            await self.client.send_text(
                touser, render.plain_text(render.follow_up(card), card.mentions)
            )
        return Placement(placement.ref, {"response_code": "", "state": card.state})

    def stale(self, card: Card, placement: CardRef) -> bool:
        """The card people see is older than `card`, and a response code is at hand to fix it."""
        code_at = placement.code_at
        if placement.drawn >= card.version or not placement.response_code or code_at is None:
            return False
        return self.clock.now() - code_at < CODE_LIFETIME

    async def redraw(self, card: Card, placement: CardRef) -> Placement | None:
        """Replace the card for everyone it went to, spending the newest response code."""
        if not self.stale(card, placement):
            return None
        code = placement.response_code
        await self.client.update_card(
            code, render.template_card(card, placement.ref, source=self.source)
        )
        return Placement(
            placement.ref, {"response_code": "", "state": card.state, "drawn": card.version}
        )

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        await self.client.send_text(self.touser(group), render.plain_text(text, mentions))

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        await self.client.send_text(self.touser(group), render.plain_notice(notice))

    async def send_reply(self, to: str, text: str, mentions: tuple[Mention, ...]) -> None:
        """Words for one person (a command's answer that missed the passive reply)."""
        await self.client.send_text(to, render.plain_text(text, mentions))

    async def send_direct(self, to: str, text: str) -> None:
        """An app message (message/send) to one userid."""
        await self.client.send_text(to, render.plain_text(text))


class WecomWebhookChannel(ChannelDefaults):
    """`wecom_webhook`: a group robot (消息推送): markdown only, 20 messages a minute."""

    name = "wecom_webhook"
    capabilities = Capabilities(
        edits_in_place=False, mentions_by=MentionBy.WECOM_USERID, notify_only=True
    )
    hint = ""

    def __init__(self, client: WebhookClient, settings: DomainSettings) -> None:
        self.client = client
        self.userids = StaffDirectory(settings.staff).accounts("wecom")

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        return webhook_budget(20)

    def update_sends(self, card: Card, placement: CardRef) -> bool:
        return followup_due(placement, card)

    def url(self, group: GroupSettings) -> str:
        if not group.webhook_url:
            raise PermanentError(f"group {group.id!r} ({self.name}) has no webhook_url")
        return group.webhook_url

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        if placement is None or not placement.ref:
            hint = self.hint.format(handle=card.handle)
            await self.client.send_markdown(
                self.url(group), render.markdown_card(card, self.userids, hint=hint)
            )
            return Placement("webhook", {"state": card.state})
        if placement.version >= card.version:
            return Placement(placement.ref)
        if followup_due(placement, card):
            line = render.markdown_text(render.follow_up(card), card.mentions, self.userids)
            await self.client.send_markdown(self.url(group), line)
        return Placement(placement.ref, {"state": card.state})

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        await self.client.send_markdown(
            self.url(group), render.markdown_text(text, mentions, self.userids)
        )

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        await self.client.send_markdown(self.url(group), render.markdown_notice(notice))


class WecomAibotHttpChannel(WecomWebhookChannel):
    """`wecom_aibot_http`: people talk to the AI bot through `/wecom/aibot`; it can only answer,
    so new cards and notices reach the group through the group's webhook robot."""

    name = "wecom_aibot_http"
    capabilities = Capabilities(
        edits_in_place=False,
        mentions_by=MentionBy.WECOM_USERID,
        replies_later=True,
    )
    hint = "在群里 @机器人 查 {handle} 可以直接处理"

    async def send_reply(self, to: str, text: str, mentions: tuple[Mention, ...]) -> None:
        """Words through a callback's single-use `response_url` (valid an hour)."""
        await self.client.send_markdown(
            to, render.markdown_text(text, mentions, self.userids), "response_url"
        )

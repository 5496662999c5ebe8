"""The sandbox platform: messages live in `sandbox_messages`; watchers get them over a websocket."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from handlers.channel import Budget, Capabilities, CardRef, MentionBy, Placement
from handlers.clock import Clock
from handlers.config import GroupSettings
from handlers.errors import PermanentError
from handlers.message import Card, Mention, Notice
from integrations.channel import ChannelDefaults
from integrations.sandbox.render import (
    Via,
    message_json,
    render_card,
    render_notice,
    render_text,
)
from integrations.wecom import render as wecom
from integrations.wecom.aibot import UPDATE_WINDOW_S as WECOM_EDIT_WINDOW_S
from storage.coordination import Coordination, CoordinationError
from storage.db import Database
from storage.enums import MessageKind
from storage.models import SandboxMessage
from storage.repositories import SandboxMessageRepository

log = logging.getLogger(__name__)

BOT = "bot"


def topic(group_id: str) -> str:
    return f"sandbox:{group_id}"


def direct_conversation(user: str) -> str:
    """Where a person's one-to-one chat with the bot is kept: `@<sandbox user>`."""
    return f"@{user}"


def input_ref(message_id: int) -> str:
    """The input id of what a person typed in the sandbox (`redact_input` finds it by this)."""
    return f"sandbox-{message_id}"


def wecom_drawn(card: dict[str, Any], at: datetime) -> dict[str, Any]:
    """`meta` for a card a WeCom group now sees as `card`."""
    return {"wecom": card, "wecom_state": card.get("state"), "wecom_at": at.isoformat()}


def at_end(text: str, mentions: tuple[Mention, ...]) -> str:
    """A WeCom markdown line: the @s after the words."""
    return " ".join([text, *(f"@{m.name}" for m in mentions)])


class SandboxChannel(ChannelDefaults):
    name = "sandbox"
    capabilities = Capabilities(
        edits_in_place=True,
        mentions_by=MentionBy.NAME,
        direct_messages=True,
        redacts_input=True,
    )

    def __init__(self, db: Database, clock: Clock, coord: Coordination) -> None:
        self.db = db
        self.clock = clock
        self.coord = coord
        self.taps: dict[int, datetime] = {}

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        return None

    def update_sends(self, card: Card, placement: CardRef) -> bool:  # noqa: ARG002
        return False

    def tapped(self, message_id: int) -> None:
        """Someone tapped a button on this card now: what it brings is the tap's answer, which
        a WeCom AI bot may still draw in place (`drawn_by_tap`)."""
        self.taps[message_id] = self.clock.now()

    def answered(self, message_id: int) -> None:
        """The tap's answer is out: later changes reach a WeCom group as follow-up lines."""
        self.taps.pop(message_id, None)

    def drawn_by_tap(self, message_id: int) -> bool:
        at = self.taps.get(message_id)
        return at is not None and (self.clock.now() - at).total_seconds() < WECOM_EDIT_WINDOW_S

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        now = self.clock.now()
        wecom_lines: list[str] = []
        async with self.db.begin() as session:
            repo = SandboxMessageRepository(session)
            if placement and placement.ref:
                message = await repo.get(int(placement.ref))
            else:
                message = await repo.card_for(group.id, card.case_pk)
            if message is None:
                drawn = render_card(card)
                message = await repo.add(
                    group_id=group.id,
                    kind=MessageKind.CARD.value,
                    author=BOT,
                    text=card.summary,
                    case_pk=card.case_pk,
                    card=drawn,
                    meta=wecom_drawn(drawn, now),
                    now=now,
                )
                if card.mentions:
                    # A WeCom AI bot's card cannot @ anyone: a line after it does.
                    wecom_lines.append(at_end(wecom.mention_line(card), card.mentions))
            elif message.card is None or int(message.card.get("version", 0)) <= card.version:
                meta = dict(message.meta or wecom_drawn(message.card or {}, message.created_at))
                message.card = render_card(card)
                message.text = card.summary
                message.updated_at = now
                if self.drawn_by_tap(message.id):
                    meta |= wecom_drawn(message.card, now)
                elif meta.get("wecom_state") != card.state:
                    wecom_lines.append(at_end(wecom.follow_up(card), card.mentions))
                    meta["wecom_state"] = card.state
                message.meta = meta
                await session.flush()
        await self.announce(message)
        for line in wecom_lines:
            await self.say(group.id, BOT, line, meta={"via": Via.WECOM})
        return Placement(str(message.id))

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        meta = {"via": Via.LINE, "notify": [m.name for m in mentions]}
        await self.say(group.id, BOT, render_text(text, mentions), meta=meta)

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        async with self.db.begin() as session:
            message = await SandboxMessageRepository(session).add(
                group_id=group.id,
                kind=MessageKind.CARD.value,
                author=BOT,
                text=f"{notice.title} — {notice.status}",
                card=render_notice(notice),
                now=self.clock.now(),
            )
        await self.announce(message)

    async def send_direct(self, to: str, text: str) -> None:
        await self.say(direct_conversation(to), BOT, text)

    async def redact_input(self, ref: str, text: str) -> None:
        """The typed message, as the page and the API show it from now on, is `text`."""
        _, _, number = ref.partition("sandbox-")
        if not number.isdigit():
            raise PermanentError(f"{ref!r} is not a sandbox message")
        async with self.db.begin() as session:
            message = await SandboxMessageRepository(session).get(int(number))
            if message is None or message.kind != MessageKind.TEXT.value or message.author == BOT:
                return
            message.text = text
            message.updated_at = self.clock.now()
            await session.flush()
        await self.announce(message)

    async def say(
        self, group_id: str, author: str, text: str, *, meta: dict[str, Any] | None = None
    ) -> SandboxMessage:
        """A line in the group; `meta` says how a platform would have carried the bot's."""
        async with self.db.begin() as session:
            message = await SandboxMessageRepository(session).add(
                group_id=group_id,
                kind=MessageKind.TEXT.value,
                author=author,
                text=text,
                meta=meta,
                now=self.clock.now(),
            )
        await self.announce(message)
        return message

    async def announce(self, message: SandboxMessage) -> None:
        """Tell open pages; the message is stored already, so a page that misses it while
        Redis is away shows it on its next load."""
        try:
            await self.coord.publish(
                topic(message.group_id), json.dumps(message_json(message), ensure_ascii=False)
            )
        except CoordinationError as exc:
            log.warning("sandbox page not told of message %s: %s", message.id, exc)

"""WeCom wiring: the channels, the one path from a WeCom message or click to the commands,
and the outbox performers that finish inputs which outlived their callback.

Callbacks (app XML, AI-bot HTTP JSON) are persisted as a `wecom.input` outbox item before
anything acts, under an id made of WeCom's own dedup key: a retried callback finds it and
does nothing. The route waits up to `passive_wait_s` to answer in the response; after that
it acks empty and the words go by message (`wecom.reply`). A crash in between leaves the
item for the dispatcher.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

from aiohttp import web

from bot.dispatch import Dispatcher, Perform, destination
from bot.keys import HTTP, METRICS, SERVICES
from bot.lease import DatabaseLease
from bot.metrics import Metrics
from bot.services import BotServices
from commands import ChatInput
from commands.scope import Scope
from handlers import onboarding
from handlers.cards import build_card
from handlers.channel import CardRef, Channel
from handlers.context import Tx
from handlers.errors import ExternalError, PermanentError, ThrottledError
from handlers.message import Mention, Reply
from handlers.outbox import InputKey
from integrations.wecom import render
from integrations.wecom.aibot import AibotChannel
from integrations.wecom.channel import WecomAibotHttpChannel, WecomAppChannel, WecomWebhookChannel
from integrations.wecom.client import WebhookClient, WeComClient
from integrations.wecom.models import Inbound, Outcome
from storage.coordination import CoordinationError
from storage.enums import OutboxState
from storage.models import Case, OutboxItem

log = logging.getLogger(__name__)

INPUT = "wecom.input"
REPLY = "wecom.reply"
# Channels whose group card is redrawn by the click's own answer, within their edit window
# (the AI bot's 5 s).
REDRAWN_BY_ANSWER = frozenset(
    channel.name
    for channel in (AibotChannel, WecomAibotHttpChannel, WecomAppChannel, WecomWebhookChannel)
    if channel.capabilities.edit_window_s is not None
)
EXPIRED_BUTTON = "这个按钮已失效，请在群里用命令操作（@我 帮助）"


class Bridge:
    """Turns an `Inbound` into the router's `ChatInput`, and a click into the card as it is now."""

    def __init__(self, svc: BotServices, metrics: Metrics) -> None:
        self.svc = svc
        self.metrics = metrics

    async def handle(self, inbound: Inbound) -> Outcome:
        chat = ChatInput(
            channel=inbound.channel,
            platform="wecom",
            user=inbound.user,
            text=inbound.text,
            group_id=inbound.group_id,
            input_id=inbound.dedup[-40:],
            # The app only ever hears from people one to one (inputs saved before chattype too).
            direct=inbound.chattype == "single" or inbound.channel == "wecom_app",
        )
        if not inbound.key:
            if inbound.chattype == "group" and not inbound.group_id and inbound.conversation:
                async with self.svc.tx() as tx:
                    await onboarding.tell_admins(tx, inbound.channel, inbound.conversation)
            return Outcome(await self._run(chat))
        click = render.parse_key(inbound.key)
        if click is None:
            return Outcome(Reply(EXPIRED_BUTTON, ok=False))
        async with self.svc.tx() as tx:
            before = await tx.cases.by_handle(click.handle)
            version = before.version if before else 0
        reply = await self._run(
            dataclasses.replace(
                chat, action=click.action, case_ref=click.handle, card_version=click.version
            )
        )
        staff = self.svc.staff.by_platform("wecom", inbound.user)
        scope = Scope.of(self.svc.settings, staff, group_id=chat.group_id, direct=chat.direct)
        async with self.svc.tx() as tx:
            case = await tx.cases.by_handle(click.handle)
            if case is None or not scope.allows(case):
                return Outcome(reply)
            card = build_card(case, tx.view)
            if inbound.channel in REDRAWN_BY_ANSWER and inbound.task_id:
                await self._shown(tx, inbound, case)
        return Outcome(reply, card, changed=card.version != version)

    async def _run(self, chat: ChatInput) -> Reply:
        reply = await self.svc.commands.handle(self.svc, chat)
        self.metrics.commands.labels(chat.channel, "ok" if reply.ok else "refused").inc()
        return reply

    @staticmethod
    async def _shown(tx: Tx, inbound: Inbound, case: Case) -> None:
        """The click's answer is about to show this version to the group: no follow-up for it."""
        placement = await tx.cards.by_ref(inbound.channel, inbound.task_id)
        if (
            placement is not None
            and placement.case_pk == case.id
            and placement.version < case.version
        ):
            await tx.cards.record(
                case_pk=case.id,
                group_id=placement.group_id,
                channel=placement.channel,
                ref=placement.ref,
                version=case.version,
                now=tx.now,
                extra={"state": case.state},
            )

    # -- callbacks that go through the outbox ----------------------------------------------------

    async def accept(self, inbound: Inbound) -> str | None:
        """Persist `inbound` as an outbox item; None when WeCom is retrying one already taken."""
        item_id = str(InputKey(INPUT, inbound.channel, inbound.dedup))
        lease = timedelta(seconds=self.svc.settings.dispatch.lease_s)
        async with self.svc.tx() as tx:
            new = await tx.outbox.add(
                item_id,
                INPUT,
                now=tx.now,
                payload={"inbound": inbound.to_json()},
                not_before=tx.now + lease,
            )
            if new and inbound.response_code and inbound.task_id:
                await remember_code(tx, inbound)
        return item_id if new else None

    async def run(self, inbound: Inbound, dispatcher: Dispatcher) -> Outcome:
        """The input's work; an app click's card is redrawn now, spending the click's fresh code."""
        outcome = await self.handle(inbound)
        if inbound.channel == "wecom_app" and inbound.task_id and outcome.card is not None:
            try:
                await redraw(dispatcher, outcome.card.case_pk, inbound)
            except (ExternalError, ThrottledError, CoordinationError) as exc:
                log.warning("card %s not redrawn after a click: %s", outcome.card.handle, exc)
        return outcome

    async def finish(self, item_id: str, inbound: Inbound, words: Reply | None) -> str | None:
        """Mark the input done; queue `words` for the person when the callback could not carry them."""
        reply_id = None
        async with self.svc.tx() as tx:
            to = inbound.response_url if inbound.channel == "wecom_aibot_http" else inbound.user
            if words is not None and not to:
                log.warning("no way left to tell %s: %s", inbound.user, words.text[:200])
            elif words is not None:
                reply_id = str(InputKey(REPLY, inbound.channel, inbound.dedup))
                await tx.outbox.add(
                    reply_id,
                    REPLY,
                    now=tx.now,
                    payload={
                        "channel": inbound.channel,
                        "to": to,
                        "text": words.text,
                        "mentions": [[m.staff_id, m.name] for m in words.mentions],
                    },
                )
            await tx.outbox.done(item_id, now=tx.now)
        return reply_id


def words_for(inbound: Inbound, outcome: Outcome, *, redrawn: bool) -> Reply | None:
    """What the person must still be told by message once the callback's answer is gone."""
    if not inbound.key:
        return outcome.reply
    lines = [outcome.reply.text] if outcome.tell else []
    if not redrawn and outcome.changed and outcome.card is not None:
        lines.append(render.follow_up(outcome.card))
    if not lines:
        return None
    return Reply("\n".join(lines), mentions=outcome.reply.mentions, ok=outcome.reply.ok)


async def remember_code(tx: Tx, inbound: Inbound) -> None:
    """A click's response code is the newest one for its card: the next update spends it."""
    placement = await tx.cards.by_ref(inbound.channel, inbound.task_id)
    if placement is not None:
        await tx.cards.record(
            case_pk=placement.case_pk,
            group_id=placement.group_id,
            channel=placement.channel,
            ref=placement.ref,
            version=placement.version,
            now=tx.now,
            extra={"response_code": inbound.response_code, "code_at": tx.now.isoformat()},
        )


async def redraw(d: Dispatcher, case_pk: int, inbound: Inbound) -> None:
    """Bring the clicked app card up to date: its queued updates first; then, when it was left
    stale for want of a response code, directly with the one this click brought. One click at a
    time per case, since a response code works once."""
    async with d.svc.coord.lock(f"wecom:redraw:{case_pk}", ttl_s=30):
        async with d.svc.tx() as tx:
            queued = [item.id for item in await tx.outbox.pending_for_case(case_pk, "card")]
        for item_id in queued:
            await perform_now(d, item_id)
        async with d.svc.tx() as tx:
            if await tx.outbox.pending_for_case(case_pk, "card"):
                return
            row = await tx.cards.by_ref(inbound.channel, inbound.task_id)
            case = await tx.cases.get(case_pk)
            if row is None or case is None:
                return
            placement = CardRef.of(row)
            card = build_card(case, tx.view)
        channel = d.channels.get(placement.channel)
        if (
            channel is None
            or not channel.capabilities.needs_response_code
            or not channel.stale(card, placement)
        ):
            return
        group, _ = await destination(d, placement.group_id)
        where = await channel.redraw(card, placement)
        if where is not None:
            async with d.svc.tx() as tx:
                await tx.cards.record(
                    case_pk=case_pk,
                    group_id=group.id,
                    channel=group.channel,
                    ref=where.ref,
                    version=max(card.version, placement.version),
                    now=tx.now,
                    extra=where.extra,
                )


async def perform_now(d: Dispatcher, item_id: str) -> None:
    """Lease one pending item (row-locked, so no other instance or loop takes it too) and
    perform it at once: a person is waiting for it."""
    async with d.svc.tx() as tx:
        item = await tx.session.get(
            OutboxItem, item_id, with_for_update=True, populate_existing=True
        )
        if item is None or item.state != OutboxState.PENDING:
            return
        if item.lease_until is not None and item.lease_until > tx.now:
            return
        item.lease_until = tx.now + timedelta(seconds=d.svc.settings.dispatch.lease_s)
    await d.perform(item)


# -- outbox performers ---------------------------------------------------------------------


async def _input(d: Dispatcher, item: OutboxItem) -> None:
    """An input whose callback is long gone (the instance stopped mid-way): do it, answer by message."""
    bridge = Bridge(d.svc, d.metrics)
    inbound = Inbound.from_json(item.payload["inbound"])
    outcome = await bridge.run(inbound, d)
    await bridge.finish(item.id, inbound, words_for(inbound, outcome, redrawn=False))


async def _reply(d: Dispatcher, item: OutboxItem) -> None:
    channel = d.channels.get(str(item.payload["channel"]))
    if channel is None or not channel.capabilities.replies_later:
        raise PermanentError(f"channel {item.payload['channel']!r} cannot send a reply")
    mentions = tuple(Mention(a, b) for a, b in item.payload.get("mentions", []))
    await channel.send_reply(str(item.payload["to"]), str(item.payload["text"]), mentions)


# The WeCom outbox kinds, and what the admin group calls them when they fail (bot.registry).
PERFORMERS: dict[str, Perform] = {INPUT: _input, REPLY: _reply}
KIND_TEXT = {INPUT: "企业微信消息处理", REPLY: "企业微信回复发送"}


# -- channel factories (bot.registry.CHANNELS) ---------------------------------------------


def app_client(app: web.Application) -> WeComClient:
    svc = app[SERVICES]
    wecom = svc.settings.wecom
    return WeComClient(
        app[HTTP],
        svc.coord,
        api_base=wecom.api_base,
        corp_id=wecom.corp_id,
        agent_id=wecom.agent_id,
        secret=wecom.secret.get_secret_value(),
        throttle_s=wecom.throttle_wait_s,
    )


def aibot_channel(app: web.Application) -> Channel:
    svc = app[SERVICES]
    bridge = Bridge(svc, app[METRICS])
    aibot = svc.settings.wecom.aibot
    lease = DatabaseLease(svc, f"wecom_aibot:{aibot.bot_id}", aibot.lease_s)
    return AibotChannel(app[HTTP], svc.settings, svc.coord, bridge.handle, lease)


def aibot_http_channel(app: web.Application) -> Channel:
    settings = app[SERVICES].settings
    client = WebhookClient(app[HTTP], throttle_s=settings.wecom.throttle_wait_s)
    return WecomAibotHttpChannel(client, settings)


def app_channel(app: web.Application) -> Channel:
    svc = app[SERVICES]
    return WecomAppChannel(app_client(app), svc.settings, svc.clock)


def webhook_channel(app: web.Application) -> Channel:
    settings = app[SERVICES].settings
    client = WebhookClient(app[HTTP], throttle_s=settings.wecom.throttle_wait_s)
    return WecomWebhookChannel(client, settings)

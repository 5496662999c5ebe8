"""The AI bot over its websocket long connection (docs 101463; the frames of the official
`wecom-aibot-python-sdk` 1.0.2), as the `wecom_aibot` channel.

Every frame is `{"cmd"?, "headers": {"req_id"}, "body"?}`; WeCom acknowledges each frame we
send with one carrying the same req_id and `errcode`. We subscribe first, ping every
`heartbeat_s` (two unanswered pings: the connection is dead), and reconnect with
exponential backoff. A click may change its card in place only through
`aibot_respond_update_msg` with the click's req_id within 5 s; later changes become a
short follow-up line naming the handle.

WeCom keeps one long connection per bot: a newer subscription makes it send the older one
a `disconnected_event` and close it (SDK 1.0.7). So of several instances only the holder
of a lease connects; the others leave the bot's outbox items to it. A connection ended by
`disconnected_event` is not reopened at once: something else holds the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from pydantic import ValidationError

from handlers.authority import StaffDirectory
from handlers.channel import Budget, Capabilities, CardRef, MentionBy, Placement, followup_due
from handlers.config import DomainSettings, GroupSettings
from handlers.errors import RetryableError, ThrottledError
from handlers.message import Card, Mention, Notice, Reply
from handlers.onboarding import unknown_group_hint
from integrations.channel import ChannelDefaults
from integrations.wecom import render
from integrations.wecom.client import check
from integrations.wecom.models import AibotBody, AibotFrame, Inbound, Outcome
from integrations.wecom.settings import WecomConfig
from storage.coordination import Coordination, CoordinationError

log = logging.getLogger(__name__)

Handler = Callable[[Inbound], Awaitable[Outcome]]

SUBSCRIBE = "aibot_subscribe"
PING = "ping"
RESPOND = "aibot_respond_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
SEND = "aibot_send_msg"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
DISCONNECTED = "disconnected_event"
MAX_MISSED_PINGS = 2
ACK_TIMEOUT_S = 5.0
# WeCom takes a card update up to 5 s after the click; leave room for the frame to travel.
UPDATE_WINDOW_S = 4.5
DEDUP_TTL_S = 24 * 3600
BUSY = "系统繁忙，这条没有处理，请稍后再发一次"
WELCOME = "你好，我是售后机器人。在群里 @我 加命令，或直接私聊：帮助 · 待办 · 查 R12 · 通过 R12"


class Lease(Protocol):
    """The right to hold the bot's one connection, shared by all instances."""

    async def take(self) -> bool:
        """Take or renew it; True while this instance holds it."""

    async def release(self) -> None: ...


def new_req_id(cmd: str) -> str:
    """`<cmd>_<ms timestamp>_<random>`, as the SDK makes them for frames it starts."""
    return f"{cmd}_{int(time.time() * 1000)}_{os.urandom(4).hex()}"


class AibotChannel(ChannelDefaults):
    """`wecom_aibot`: one websocket for the bot, opened by the instance holding `lease`."""

    name = "wecom_aibot"
    capabilities = Capabilities(
        edits_in_place=False,
        mentions_by=MentionBy.WECOM_USERID,
        edit_window_s=UPDATE_WINDOW_S,
        keeps_connection=True,
        leased=True,
        direct_messages=True,
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: WecomConfig,
        coord: Coordination,
        handler: Handler,
        lease: Lease | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.config = settings.wecom.aibot
        self.source = settings.bot.name
        self.coord = coord
        self.handler = handler
        self.groups = {
            g.chat_id: g for g in settings.groups if g.channel == self.name and g.chat_id
        }
        self.userids = StaffDirectory(settings.staff).accounts("wecom")
        self.authenticated = asyncio.Event()
        self.update_window_s = UPDATE_WINDOW_S
        self.waits: list[float] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._acks: dict[str, asyncio.Future[AibotFrame]] = {}
        self._missed_pings = 0
        self.lease = lease
        self.held = lease is None
        self.kicked = 0
        self._kicked = False

    # -- Channel ----------------------------------------------------------------------------

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        # WeCom states no number for aibot_send_msg; hold it to the group-robot limit
        # (20 a minute): burst + a minute's refill, so no 60 s window carries more than 20.
        return Budget(per_minute=15, burst=5)

    def update_sends(self, card: Card, placement: CardRef) -> bool:
        return followup_due(placement, card)

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        if placement is not None and placement.ref:
            if placement.version >= card.version:
                return Placement(placement.ref)
            if followup_due(placement, card):
                await self.send_markdown(
                    group.chat_id,
                    render.markdown_text(render.follow_up(card), card.mentions, self.userids),
                )
            return Placement(placement.ref, {"state": card.state})
        task_id = render.new_task_id(card)
        await self.request(
            SEND,
            {
                "chatid": group.chat_id,
                "msgtype": "template_card",
                "template_card": render.template_card(card, task_id, source=self.source),
            },
        )
        if card.mentions:
            # Cards cannot @ anyone; the line after it does. The card is out already, so a
            # failure here must not make the dispatcher send the card again.
            try:
                await self.send_markdown(
                    group.chat_id,
                    render.markdown_text(render.mention_line(card), card.mentions, self.userids),
                )
            except Exception as exc:
                log.warning("AI bot mention line for %s not sent: %s", card.handle, exc)
        return Placement(task_id, {"state": card.state})

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        await self.send_markdown(group.chat_id, render.markdown_text(text, mentions, self.userids))

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        await self.send_markdown(group.chat_id, render.markdown_notice(notice))

    async def send_direct(self, to: str, text: str) -> None:
        """`aibot_send_msg` to a userid: the bot's one-to-one chat with that person."""
        await self.send_markdown(to, render.markdown_text(text, (), self.userids))

    async def send_markdown(self, chatid: str, content: str) -> None:
        await self.request(
            SEND, {"chatid": chatid, "msgtype": "markdown", "markdown": {"content": content}}
        )

    # -- the connection ------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: hold the lease (when there is one) and stay connected meanwhile."""
        if self.lease is None:
            await self._connect_forever()
            return
        renew_s = self.config.lease_s / 3
        try:
            while True:
                if await self._take():
                    await self._hold(renew_s)
                await asyncio.sleep(renew_s)
        finally:
            # Stopping: hand the bot over now rather than when the lease runs out.
            try:
                await self.lease.release()
            except Exception as exc:
                log.warning("AI bot lease not released, it runs out by itself: %s", exc)

    async def _take(self) -> bool:
        assert self.lease is not None
        try:
            return await self.lease.take()
        except Exception as exc:
            log.warning("AI bot lease not renewed: %s: %s", type(exc).__name__, exc)
            return False

    async def _hold(self, renew_s: float) -> None:
        """Connected while the lease is ours; closed before it could have run out."""
        log.info("AI bot %s: this instance holds the connection", self.config.bot_id)
        loop = asyncio.get_running_loop()
        self.held = True
        valid_until = loop.time() + self.config.lease_s
        connection = asyncio.create_task(self._connect_forever())
        try:
            while not connection.done():
                await asyncio.wait({connection}, timeout=renew_s)
                if await self._take():
                    valid_until = loop.time() + self.config.lease_s
                elif loop.time() + renew_s >= valid_until:
                    log.warning("AI bot %s: lease lost, closing the connection", self.config.bot_id)
                    return
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection
            self.held = False

    async def _connect_forever(self) -> None:
        """Stay connected: connect, subscribe, serve; back off and reconnect."""
        attempt = 0
        while True:
            self._kicked = False
            try:
                if await self._serve_once():
                    attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("AI bot websocket failed: %s: %s", type(exc).__name__, exc)
            finally:
                self.authenticated.clear()
                self._ws = None
                for future in self._acks.values():
                    if not future.done():
                        future.set_exception(RetryableError("AI bot websocket closed"))
            delay = min(self.config.reconnect_max_s, self.config.reconnect_base_s * 2**attempt)
            attempt += 1
            if self._kicked:
                # Reconnecting at once would only kick the other connection in turn.
                delay = self.config.reconnect_max_s
                log.warning(
                    "AI bot %s: WeCom closed this connection for a newer one (%s): another "
                    "instance or deployment uses this bot; trying again in %.0f s",
                    self.config.bot_id,
                    DISCONNECTED,
                    delay,
                )
            self.waits = [*self.waits[-99:], delay]
            log.info("AI bot reconnecting in %.1f s (attempt %d)", delay, attempt)
            await asyncio.sleep(delay)

    async def _serve_once(self) -> bool:
        """One connection's life; True when it authenticated (the backoff starts over)."""
        async with self.session.ws_connect(self.config.ws_url, heartbeat=None) as ws:
            self._ws = ws
            self._missed_pings = 0
            req_id = new_req_id(SUBSCRIBE)
            secret = self.config.secret.get_secret_value()
            await ws.send_json(
                {
                    "cmd": SUBSCRIBE,
                    "headers": {"req_id": req_id},
                    "body": {"bot_id": self.config.bot_id, "secret": secret},
                }
            )
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the ack arrives, and this loop would then outlive its shutdown.
            async with asyncio.timeout(ACK_TIMEOUT_S * 2):
                ack = await ws.receive_json()
            if ack.get("headers", {}).get("req_id") != req_id or ack.get("errcode") != 0:
                log.error(
                    "AI bot subscription refused (errcode %s %s): check wecom.aibot.bot_id and secret",
                    ack.get("errcode"),
                    ack.get("errmsg"),
                )
                return False
            log.info("AI bot %s connected", self.config.bot_id)
            self.authenticated.set()
            async with asyncio.TaskGroup() as tasks:
                beat = tasks.create_task(self._heartbeat(ws))
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    self._on_frame(message.data, tasks)
                    if self._kicked:
                        break
                beat.cancel()
            return True

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            if self._missed_pings >= MAX_MISSED_PINGS:
                log.warning("AI bot: %d pings unanswered, reconnecting", self._missed_pings)
                await ws.close()
                return
            self._missed_pings += 1
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json({"cmd": PING, "headers": {"req_id": new_req_id(PING)}})

    def _on_frame(self, data: str, tasks: asyncio.TaskGroup) -> None:
        try:
            frame = AibotFrame.model_validate_json(data)
        except ValidationError:
            log.warning("AI bot: unreadable frame %.200s", data)
            return
        if frame.cmd == EVENT_CALLBACK and _eventtype(frame) == DISCONNECTED:
            self._kicked = True
            self.kicked += 1
            return
        if frame.cmd in (MSG_CALLBACK, EVENT_CALLBACK):
            tasks.create_task(self._on_callback(frame, asyncio.get_running_loop().time()))
            return
        if frame.req_id.startswith(PING + "_"):
            self._missed_pings = 0
            return
        waiting = self._acks.get(frame.req_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(frame)

    async def request(self, cmd: str, body: dict[str, Any], *, req_id: str = "") -> AibotFrame:
        """Send one frame and wait for WeCom's ack; errcodes become our errors."""
        if not self.held:
            # Not sent and not failed: the instance holding the connection sends it.
            raise ThrottledError("the AI bot connection is held by another instance", defer=1.0)
        ws = self._ws
        if ws is None or ws.closed or not self.authenticated.is_set():
            raise RetryableError("the AI bot websocket is not connected")
        req_id = req_id or new_req_id(cmd)
        waiting: asyncio.Future[AibotFrame] = asyncio.get_running_loop().create_future()
        self._acks[req_id] = waiting
        try:
            await ws.send_json({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
            async with asyncio.timeout(ACK_TIMEOUT_S):
                ack = await waiting
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            raise RetryableError(f"{cmd}: no ack ({type(exc).__name__})") from exc
        finally:
            self._acks.pop(req_id, None)
        check({"errcode": ack.errcode or 0, "errmsg": ack.errmsg}, cmd)
        return ack

    # -- callbacks --------------------------------------------------------------------------

    async def _on_callback(self, frame: AibotFrame, received: float) -> None:
        try:
            body = AibotBody.model_validate(frame.body or {})
            try:
                if not body.msgid or not await self.coord.first_seen(
                    f"wecom:aibot:{body.msgid}", DEDUP_TTL_S
                ):
                    return
            except CoordinationError as exc:
                # Not known to be new, so not acted on: the person is asked to try again.
                log.warning("AI bot callback %s not taken, Redis unreachable: %s", body.msgid, exc)
                await self._busy(frame, body)
                return
            if frame.cmd == MSG_CALLBACK:
                await self._on_message(frame, body)
            elif body.card_event is not None:
                await self._on_click(frame, body, received)
            elif body.event is not None and body.event.eventtype == "enter_chat":
                await self.request(
                    RESPOND_WELCOME,
                    {"msgtype": "text", "text": {"content": WELCOME}},
                    req_id=frame.req_id,
                )
        except Exception:
            log.exception("AI bot callback %s failed", frame.req_id)

    async def _busy(self, frame: AibotFrame, body: AibotBody) -> None:
        if frame.cmd == MSG_CALLBACK:
            busy = Outcome(Reply(BUSY, ok=False))
            await self.request(
                RESPOND, reply_body(busy, self.userids, self.source), req_id=frame.req_id
            )
        elif body.card_event is not None:
            text = f"<@{body.sender.userid}> {BUSY}"
            await self.send_markdown(body.conversation, render.markdown_text(text, (), {}))

    def inbound(self, body: AibotBody, **fields: str) -> Inbound:
        group = self.groups.get(body.chatid) if body.chattype == "group" else None
        return Inbound(
            channel=self.name,
            user=body.sender.userid,
            dedup=f"aibot:{body.msgid}",
            conversation=body.conversation,
            group_id=group.id if group else "",
            chattype=body.chattype,
            **fields,
        )

    async def _on_message(self, frame: AibotFrame, body: AibotBody) -> None:
        outcome = await self.handler(self.inbound(body, text=body.content))
        if body.chattype == "group" and body.chatid not in self.groups:
            outcome = unknown_group(outcome, body.chatid, self.name, self.settings)
        await self.request(
            RESPOND, reply_body(outcome, self.userids, self.source), req_id=frame.req_id
        )

    async def _on_click(self, frame: AibotFrame, body: AibotBody, received: float) -> None:
        event = body.card_event
        assert event is not None
        outcome = await self.handler(self.inbound(body, key=event.event_key, task_id=event.task_id))
        loop = asyncio.get_running_loop()
        lines: list[str] = []
        if outcome.card is not None:
            if loop.time() - received < self.update_window_s:
                update = {
                    "response_type": "update_template_card",
                    "template_card": render.template_card(
                        outcome.card, event.task_id, source=self.source
                    ),
                }
                await self.request(RESPOND_UPDATE, update, req_id=frame.req_id)
            elif outcome.changed:
                lines.append(render.follow_up(outcome.card))
        if outcome.tell:
            lines.insert(0, outcome.reply.text)
        if lines:
            text = render.markdown_text(
                "\n".join(lines), outcome.reply.mentions, self.userids, asker=body.sender.userid
            )
            await self.send_markdown(body.conversation, text)


def _eventtype(frame: AibotFrame) -> str:
    event = (frame.body or {}).get("event")
    return str(event.get("eventtype", "")) if isinstance(event, dict) else ""


def unknown_group(outcome: Outcome, chatid: str, channel: str, settings: DomainSettings) -> Outcome:
    """Setting up: a group no [[groups]] entry names learns its chatid from the bot's answer
    (`handlers.onboarding`), and only that group."""
    log.warning(
        "%s: message from group chatid %s, which no [[groups]] entry names: put it in a "
        "[[groups]] chat_id",
        channel,
        chatid,
    )
    hint = unknown_group_hint(settings, channel, chatid)
    return dataclasses.replace(
        outcome, reply=dataclasses.replace(outcome.reply, text=f"{hint}\n\n{outcome.reply.text}")
    )


def reply_body(outcome: Outcome, userids: dict[str, str], source: str) -> dict[str, Any]:
    """An answer to a message: a finished stream (markdown), with the case's card when it has one."""
    reply = outcome.reply
    stream = {
        "id": new_req_id("stream"),
        "finish": True,
        "content": render.markdown_text(reply.text, reply.mentions, userids),
    }
    if reply.card is None:
        return {"msgtype": "stream", "stream": stream}
    return {
        "msgtype": "stream_with_template_card",
        "stream": stream,
        "template_card": render.template_card(
            reply.card, render.new_task_id(reply.card), source=source
        ),
    }

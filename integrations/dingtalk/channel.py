"""The DingTalk channels: the app robot (Stream or HTTP mode) and the custom robot webhook.

App robot: one interactive card per case, created with `createAndDeliver` under an
outTrackId with a random suffix (stored with the card) and updated in place under it; lines
and replies go through the session webhook when it is DingTalk's own, else
`groupMessages/send`. Custom robot: markdown only (it can neither edit nor call back), a
new short line per change, never past DingTalk's 20 messages a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from handlers.authority import StaffDirectory
from handlers.channel import Budget, Capabilities, CardRef, MentionBy, Placement
from handlers.clock import Clock
from handlers.config import DomainSettings, GroupSettings
from handlers.errors import PermanentError, ThrottledError
from handlers.message import Card, Mention, Notice, Reply
from integrations.channel import ChannelDefaults
from integrations.dingtalk.client import (
    CustomRobot,
    DingtalkClient,
    SessionExpiredError,
    session_webhook_allowed,
)
from integrations.dingtalk.models import (
    CardCallback,
    CardData,
    CreateAndDeliver,
    GroupDeliverModel,
    RegisterCallback,
    RobotMessage,
    RobotSend,
    UpdateCard,
)
from integrations.dingtalk.render import (
    Who,
    card_markdown,
    card_params,
    change_markdown,
    group_markdown,
    group_message,
    new_out_track_id,
    notice_card,
    notice_markdown,
    open_space_id,
    robot_markdown,
    robot_text,
    tappable,
    work_notice,
)
from integrations.dingtalk.settings import DingtalkConfig
from integrations.dingtalk.stream import DingtalkStream, StreamHandler
from storage.coordination import Coordination

log = logging.getLogger(__name__)

CARD_CALLBACK_PATH = "/dingtalk/card"
REGISTERED_TTL_S = 24 * 3600
# A batch card's taps are recognised for a week (with Redis, across instances and restarts).
NOTICE_CARD_KEY = "dingtalk:notice-card:"
NOTICE_CARD_TTL_S = 7 * 24 * 3600


class People:
    """Staff ids → who DingTalk @-mentions (staff id, else mobile)."""

    def __init__(self, settings: DomainSettings) -> None:
        self.directory = StaffDirectory(settings.staff)
        self.user_ids = self.directory.accounts("dingtalk")
        self.by_staff_id = {
            user_id: staff
            for staff_id, user_id in self.user_ids.items()
            if (staff := self.directory.get(staff_id)) is not None
        }

    def who(self, mentions: tuple[Mention, ...]) -> tuple[Who, ...]:
        found: dict[str, Who] = {}
        for m in mentions:
            staff = self.directory.get(m.staff_id)
            who = Who(
                m.name,
                self.user_ids.get(m.staff_id, ""),
                staff.dingtalk_mobile if staff else "",
            )
            found.setdefault(who.at, who)
        return tuple(found.values())

    def of_user(self, user_id: str, nick: str = "") -> Who:
        staff = self.by_staff_id.get(user_id)
        return Who(staff.display if staff else nick or user_id, user_id)


class DingtalkChannel(ChannelDefaults):
    """The app robot in HTTP mode: clicks come back to `POST /dingtalk/card`."""

    name = "dingtalk_http"
    capabilities = Capabilities(
        edits_in_place=True, mentions_by=MentionBy.DINGTALK_STAFF_ID, direct_messages=True
    )
    callback_type: Literal["STREAM", "HTTP"] = "HTTP"

    def __init__(
        self, settings: DingtalkConfig, client: DingtalkClient, clock: Clock, coord: Coordination
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.coord = coord
        self.people = People(settings)
        if settings.dingtalk.agent_id:
            # Robot group messages cannot @ anyone: the app's work notifications can reach them.
            self.capabilities = replace(self.capabilities, notifies_apart=True)

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        # App robots are limited per API (QPS), answered as throttling, not per group.
        return None

    def update_sends(self, card: Card, placement: CardRef) -> bool:  # noqa: ARG002
        return False  # the card instance is updated

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        params = CardData(card_param_map=card_params(card))
        if placement is not None and placement.ref:
            # Cards from before the random suffix keep their `<kind>-<handle>` id.
            await self.client.update_card(UpdateCard(out_track_id=placement.ref, card_data=params))
            return Placement(placement.ref, {"space": open_space_id(group.chat_id)})
        # A taken id (CardExistsError) is somebody's card, never one to update in its place.
        track = new_out_track_id(card)
        await self._create(group, track, params, self.people.who(card.mentions))
        return Placement(track, {"space": open_space_id(group.chat_id)})

    async def _create(
        self, group: GroupSettings, track: str, params: CardData, mentions: tuple[Who, ...]
    ) -> None:
        route_key = await self._callback_route()
        at = {w.user_id: w.name for w in mentions if w.user_id}
        await self.client.create_and_deliver(
            CreateAndDeliver(
                card_template_id=self.settings.dingtalk.card_template_id,
                out_track_id=track,
                callback_type=self.callback_type,
                callback_route_key=route_key,
                card_data=params,
                open_space_id=open_space_id(group.chat_id),
                im_group_open_deliver_model=GroupDeliverModel(
                    robot_code=self.client.robot_code, at_user_ids=at or None
                ),
            )
        )

    async def _callback_route(self) -> str | None:
        """HTTP mode: make sure clicks on our cards are sent to `/dingtalk/card`."""
        if self.callback_type != "HTTP":
            return None
        base = self.settings.server.public_base_url.rstrip("/")
        if not base:
            raise PermanentError("dingtalk_http needs server.public_base_url for card callbacks")
        ding = self.settings.dingtalk
        url, key = (
            base + CARD_CALLBACK_PATH,
            f"dingtalk:card-callback:{ding.card_callback_route_key}",
        )
        if await self.coord.cache_get(key) != url:
            await self.client.register_card_callback(
                RegisterCallback(
                    callback_route_key=ding.card_callback_route_key,
                    callback_url=url,
                    api_secret=ding.app_secret.get_secret_value(),
                )
            )
            await self.coord.cache_set(key, url, REGISTERED_TTL_S)
        return ding.card_callback_route_key

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        await self.client.send_group(group.chat_id, *group_message(text, self.people.who(mentions)))

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        """A notice as Markdown; one with buttons (a batch card's 全部通过 / 列表) as an
        interactive card, whose taps `notice_card_ref` recognises."""
        if not tappable(notice):
            await self.client.send_group(group.chat_id, *group_markdown(notice_markdown(notice)))
            return
        card = notice_card(notice)
        track = new_out_track_id(card)
        await self.coord.cache_set(
            f"{NOTICE_CARD_KEY}{track}", f"{group.id}\n{notice.ref}", NOTICE_CARD_TTL_S
        )
        await self._create(group, track, CardData(card_param_map=card_params(card)), ())

    async def notice_card_ref(self, out_track_id: str) -> tuple[str, str] | None:
        """(group id, reference) of a batch card this deployment sent, else None."""
        found = await self.coord.cache_get(f"{NOTICE_CARD_KEY}{out_track_id}")
        if not found or "\n" not in found:
            return None
        group_id, ref = found.split("\n", 1)
        return group_id, ref

    async def notify(self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]) -> None:
        """A work notification to each person `text` named in the group: the line as said there,
        and which group."""
        users = [w.user_id for w in self.people.who(mentions) if w.user_id]
        if users:
            await self.client.send_work_notice(users, work_notice(text, group.name or group.id))

    async def send_direct(self, to: str, text: str) -> None:
        """The robot's one-to-one message (oToMessages/batchSend) to one staff id."""
        await self.client.send_users([to], *group_message(text))

    async def reply(self, message: RobotMessage, reply: Reply) -> None:
        """Answer an @-message: its session webhook while it lives, else the open API."""
        mentions = self.people.who(reply.mentions)
        if message.is_group:
            asker = self.people.of_user(message.sender_staff_id, message.sender_nick)
            mentions = (asker, *(w for w in mentions if w.at != asker.at))
        now_ms = int(self.clock.now().timestamp() * 1000)
        expires = message.session_webhook_expired_time
        webhook = message.session_webhook
        if webhook and not session_webhook_allowed(webhook, self.settings.dingtalk.oapi_base):
            log.warning(
                "message %s names a session webhook off DingTalk's robot host; "
                "answering by the open API",
                message.msg_id,
            )
            webhook = ""
        if webhook and (not expires or expires > now_ms):
            try:
                await self.client.reply_by_session(webhook, robot_text(reply.text, mentions))
                return
            except SessionExpiredError:
                log.info("session webhook of %s expired; answering by the open API", message.msg_id)
        if message.is_group:
            await self.client.send_group(
                message.conversation_id, *group_message(reply.text, mentions)
            )
        else:
            await self.client.send_users([message.sender_staff_id], *group_message(reply.text))

    async def tell(self, callback: CardCallback, chat_id: str, reply: Reply) -> None:
        """Say `reply` to whoever tapped a card: in the card's group, @-naming them."""
        if not chat_id:
            await self.client.send_users([callback.user_id], *group_message(reply.text))
            return
        clicker = self.people.of_user(callback.user_id)
        mentions = (clicker, *(w for w in self.people.who(reply.mentions) if w.at != clicker.at))
        await self.client.send_group(chat_id, *group_message(reply.text, mentions))


class DingtalkStreamChannel(DingtalkChannel):
    """The app robot in Stream mode: `run()` keeps the websocket that brings messages and clicks."""

    name = "dingtalk_stream"
    capabilities = Capabilities(
        edits_in_place=True,
        mentions_by=MentionBy.DINGTALK_STAFF_ID,
        keeps_connection=True,
        direct_messages=True,
    )
    callback_type: Literal["STREAM", "HTTP"] = "STREAM"

    def __init__(
        self,
        settings: DingtalkConfig,
        client: DingtalkClient,
        clock: Clock,
        coord: Coordination,
        handler_for: Callable[[DingtalkChannel], StreamHandler],
    ) -> None:
        super().__init__(settings, client, clock, coord)
        self.stream = DingtalkStream(client, handler_for(self), coord)

    async def run(self) -> None:
        await self.stream.run()


class DingtalkWebhookChannel(ChannelDefaults):
    """A custom robot (加签) in a notification-only group."""

    name = "dingtalk_webhook"
    capabilities = Capabilities(
        edits_in_place=False, mentions_by=MentionBy.DINGTALK_STAFF_ID, notify_only=True
    )

    def __init__(
        self, settings: DomainSettings, robot: CustomRobot, clock: Clock, coord: Coordination
    ) -> None:
        self.robot = robot
        self.clock = clock
        self.coord = coord
        self.people = People(settings)

    def budget(self, group: GroupSettings) -> Budget | None:  # noqa: ARG002
        # At most burst + rate·60 s = 5 + 15 = 20 messages in any minute: DingTalk's limit.
        return Budget(per_minute=15, burst=5)

    def update_sends(self, card: Card, placement: CardRef) -> bool:  # noqa: ARG002
        return True  # a robot message cannot be edited: every change is a new one

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        mentions = self.people.who(card.mentions)
        if placement is None:
            markdown = card_markdown(card, mentions)
        else:
            markdown = change_markdown(card, mentions)
        await self._send(group, robot_markdown(markdown, mentions))
        return Placement("webhook")

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None:
        await self._send(group, robot_text(text, self.people.who(mentions)))

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        await self._send(group, robot_markdown(notice_markdown(notice)))

    async def _send(self, group: GroupSettings, message: RobotSend) -> None:
        """Send, unless DingTalk has muted this robot (130101): then wait out its 10 minutes."""
        muted_key = f"dingtalk:robot-muted:{group.id}"
        now = self.clock.now().timestamp()
        until = await self.coord.cache_get(muted_key)
        if until and float(until) > now:
            raise ThrottledError(
                f"{group.id}: custom robot muted by DingTalk", defer=float(until) - now
            )
        try:
            await self.robot.send(
                group.webhook_url, group.webhook_secret.get_secret_value(), message
            )
        except ThrottledError as exc:
            log.warning("%s: custom robot throttled, waiting %.0f s", group.id, exc.defer)
            await self.coord.cache_set(muted_key, str(now + exc.defer), exc.defer + 60)
            raise

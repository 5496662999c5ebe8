"""The chat platform port: what the core asks of a channel (put a card somewhere, say a line) and
what each channel declares it can do, over value objects only: the rendered Card, Notice or text,
and a `CardRef` for where a card already is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from handlers.config import GroupSettings
from handlers.message import Card, Mention, Notice
from storage.models import CardMessage


class MentionBy(StrEnum):
    """What a platform @-mentions a person by."""

    NAME = "name"
    WECOM_USERID = "wecom_userid"
    DINGTALK_STAFF_ID = "dingtalk_staff_id"


@dataclass(frozen=True)
class Capabilities:
    """What a channel can do, declared once by the channel instead of being probed."""

    edits_in_place: bool
    """An update replaces the card people see; else a change becomes a follow-up line."""
    mentions_by: MentionBy
    edit_window_s: float | None = None
    """A click's card can be changed only this long after the click (its answer redraws it)."""
    needs_response_code: bool = False
    """An edit spends a response code that a send or a click brought; without one the card
    stays as it is until the next click."""
    direct_only: bool = False
    """Cards go by direct message to the people a group names, never to a group chat."""
    notify_only: bool = False
    """Nobody can answer or click: the channel only posts."""
    replies_later: bool = False
    """A command's answer that missed its callback can still be sent (`send_reply`)."""
    keeps_connection: bool = False
    """The channel keeps a connection of its own (a platform websocket) while the app runs:
    `run()`."""
    leased: bool = False
    """One connection per bot, held by one instance at a time: while this one does not hold
    it (`held`), the channel's work is left to the instance that does."""
    direct_messages: bool = False
    """The bot can write to one person by itself, whenever it likes (`send_direct`): what
    only that person may read (a full payee account) goes this way, never to a group."""
    redacts_input: bool = False
    """A message a person typed can be replaced after the fact (`redact_input`); on the real
    platforms a bot cannot recall or edit someone else's message."""
    notifies_apart: bool = False
    """A line in the group names people without notifying them (no @ there): the people it
    names are told one by one (`notify`)."""


@dataclass(frozen=True)
class CardRef:
    """Where a case's card already is on a platform, and what the platform told us about it."""

    case_pk: int
    group_id: str
    channel: str
    ref: str
    version: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: CardMessage) -> CardRef:
        return cls(row.case_pk, row.group_id, row.channel, row.ref, row.version, dict(row.extra))

    @property
    def state(self) -> str:
        """The case state the card showed when it was last drawn or followed up."""
        return str(self.extra.get("state", ""))

    @property
    def drawn(self) -> int:
        """The version people see (an edit may lag behind the recorded version)."""
        return int(self.extra.get("drawn", self.version))

    @property
    def response_code(self) -> str:
        return str(self.extra.get("response_code", ""))

    @property
    def code_at(self) -> datetime | None:
        at = str(self.extra.get("code_at", ""))
        return datetime.fromisoformat(at) if at else None


@dataclass(frozen=True)
class Placement:
    """Where a card now lives on the platform (message id, outTrackId, task id …)."""

    ref: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """A destination's sending limit: `per_minute` steady, up to `burst` at once."""

    per_minute: float
    burst: int


def followup_due(placement: CardRef, card: Card) -> bool:
    """A card that cannot be edited is followed by a line only when its state changed."""
    return placement.state != card.state


class Channel(Protocol):
    name: str
    capabilities: Capabilities
    held: bool
    """False while another instance holds the channel's one connection: its work waits there."""

    def budget(self, group: GroupSettings) -> Budget | None:
        """The platform's limit for one destination (None: no limit worth enforcing)."""

    def update_sends(self, card: Card, placement: CardRef) -> bool:
        """Whether bringing the card at `placement` up to `card` posts a message (what a
        budget counts) rather than only editing the one there."""

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardRef | None
    ) -> Placement:
        """Post the card, or update it in place when `placement` says where it is."""

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None: ...

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        """Post a standalone card (a digest): a card where the platform has them, else Markdown."""

    async def send_reply(self, to: str, text: str, mentions: tuple[Mention, ...]) -> None:
        """Words for one person, late (`replies_later`): a command's answer that missed the
        callback it came in by."""

    def stale(self, card: Card, placement: CardRef) -> bool:
        """People see an older card than `card`, and `redraw` could fix that now."""

    async def redraw(self, card: Card, placement: CardRef) -> Placement | None:
        """Bring a stale card up to `card` in place (`needs_response_code`); None when not stale."""

    async def send_direct(self, to: str, text: str) -> None:
        """Words for one person only, by their account on this platform (`direct_messages`);
        sent as they are, nothing masked."""

    async def redact_input(self, ref: str, text: str) -> None:
        """Replace the text of the message a person typed (its input id) (`redacts_input`)."""

    async def notify(self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]) -> None:
        """Tell the people a group line named what it said, one by one (`notifies_apart`)."""

    async def run(self) -> None:
        """Keep the channel's own connection while the app runs (`keeps_connection`)."""

"""What the dispatcher needs from a chat platform: put a card somewhere, say a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from handlers.config import GroupSettings
from handlers.message import Card, Mention, Notice
from storage.models import CardMessage


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


class Channel(Protocol):
    name: str

    def budget(self, group: GroupSettings) -> Budget | None:
        """The platform's limit for one destination (None: no limit worth enforcing)."""

    def update_sends(self, card: Card, placement: CardMessage) -> bool:
        """Whether bringing the card at `placement` up to `card` posts a message (what a
        budget counts) rather than only editing the one there."""

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardMessage | None
    ) -> Placement:
        """Post the card, or update it in place when `placement` says where it is."""

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None: ...

    async def deliver_notice(self, group: GroupSettings, notice: Notice) -> None:
        """Post a standalone card (a digest): a card where the platform has them, else Markdown."""


@runtime_checkable
class Leased(Protocol):
    """A channel whose one connection only the instance holding its lease keeps open (the
    WeCom AI bot): while `held` is false, this instance leaves the channel's work alone."""

    held: bool

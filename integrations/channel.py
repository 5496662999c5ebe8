"""What the dispatcher needs from a chat platform: put a card somewhere, say a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.message import Card, Mention
from bot.settings import GroupSettings
from storage.models import CardMessage


@dataclass(frozen=True)
class Placement:
    """Where a card now lives on the platform (message id, outTrackId, task id …)."""

    ref: str
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    async def deliver_card(
        self, group: GroupSettings, card: Card, placement: CardMessage | None
    ) -> Placement:
        """Post the card, or update it in place when `placement` says where it is."""

    async def deliver_text(
        self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]
    ) -> None: ...

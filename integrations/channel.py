"""What every channel does the same way unless it says otherwise: it is never held elsewhere,
has nothing to redraw or to run, cannot answer late, write to one person or change what
someone typed."""

from __future__ import annotations

from handlers.channel import CardRef, Placement
from handlers.config import GroupSettings
from handlers.errors import PermanentError
from handlers.message import Card, Mention


class ChannelDefaults:
    """The `Channel` members a channel without the matching capability answers trivially."""

    name: str
    held = True

    async def send_reply(self, to: str, text: str, mentions: tuple[Mention, ...]) -> None:  # noqa: ARG002
        raise PermanentError(f"channel {self.name!r} cannot send a reply")

    async def send_direct(self, to: str, text: str) -> None:  # noqa: ARG002
        raise PermanentError(f"channel {self.name!r} cannot write to one person")

    async def redact_input(self, ref: str, text: str) -> None:  # noqa: ARG002
        raise PermanentError(f"channel {self.name!r} cannot change a message someone typed")

    async def notify(self, group: GroupSettings, text: str, mentions: tuple[Mention, ...]) -> None:  # noqa: ARG002
        raise PermanentError(f"channel {self.name!r} tells nobody apart")

    def stale(self, card: Card, placement: CardRef) -> bool:  # noqa: ARG002
        return False

    async def redraw(self, card: Card, placement: CardRef) -> Placement | None:  # noqa: ARG002
        return None

    async def run(self) -> None:
        return None

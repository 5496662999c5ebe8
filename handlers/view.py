"""What a card is drawn with besides its case: the time, the team and the settings it shows.

Card builders are pure — `(case, CardContext) -> Card` — so they read no database and can be
tested per kind and state with a hand-made context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from handlers.authority import StaffDirectory
from handlers.templates import TemplateBook

if TYPE_CHECKING:
    from handlers.config import DomainSettings


@dataclass(frozen=True)
class CardContext:
    now: datetime
    tz: tzinfo
    staff: StaffDirectory
    templates: TemplateBook
    settings: DomainSettings

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

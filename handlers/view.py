"""What a card is drawn with besides its case: the time, the team and the settings it shows.

Card builders are pure — `(case, CardContext) -> Card` — so they read no database and can be
tested per kind and state with a hand-made context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from handlers.authority import StaffDirectory
from handlers.config import DomainSettings
from handlers.message import Card
from handlers.templates import TemplateBook
from storage.models import Case


@dataclass(frozen=True)
class CardContext:
    now: datetime
    tz: tzinfo
    staff: StaffDirectory
    templates: TemplateBook
    settings: DomainSettings

    @classmethod
    def of(cls, settings: DomainSettings, now: datetime) -> CardContext:
        """A context drawn from `settings` alone, at `now` (the bot's own reuses its services)."""
        return cls(
            now,
            ZoneInfo(settings.bot.timezone),
            StaffDirectory(settings.staff),
            TemplateBook.from_settings(settings),
            settings,
        )

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def footer(self, case: Case, action_text: Mapping[str, str], *, who: str = "") -> str:
        """Who moved `case` last, doing what, and when ('' before anyone did): the person's
        name (or `who`), the action in `action_text`'s words, the local time."""
        if not case.last_action:
            return ""
        name = who or self.staff.name(case.last_actor)
        what = action_text.get(case.last_action, case.last_action)
        return f"{name} {what} · {self.local(case.updated_at):%m-%d %H:%M}"


def card_of(case: Case, **fields: Any) -> Card:
    """A card of `case`: its ids, kind, state and version, and `fields` (title, status …)."""
    return Card(
        case_pk=case.id,
        case_id=case.case_id,
        handle=case.handle,
        kind=case.kind,
        state=case.state,
        version=case.version,
        **fields,
    )

"""The channel-neutral message model; each platform's `render.py` turns it into its wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tone(StrEnum):
    INFO = "info"
    WARNING = "warning"
    SUCCESS = "success"
    DANGER = "danger"
    MUTED = "muted"


class ButtonStyle(StrEnum):
    PRIMARY = "primary"
    DEFAULT = "default"
    DANGER = "danger"


@dataclass(frozen=True)
class Mention:
    """A staff member to @-mention; platforms resolve the id through the staff directory."""

    staff_id: str
    name: str


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Button:
    key: str
    text: str
    style: ButtonStyle = ButtonStyle.DEFAULT


@dataclass(frozen=True)
class Card:
    """One case as the group sees it; rebuilt from the case row on every change."""

    case_pk: int
    case_id: str
    handle: str
    kind: str
    state: str
    version: int
    title: str
    status: str
    tone: Tone
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    lines: tuple[str, ...] = ()
    footer: str = ""
    mentions: tuple[Mention, ...] = ()

    @property
    def summary(self) -> str:
        return f"{self.title} — {self.status}"


@dataclass(frozen=True)
class Reply:
    """What a command or a click answers, to the person who asked (or the group)."""

    text: str
    mentions: tuple[Mention, ...] = ()
    ok: bool = True
    card: Card | None = None
    extra: dict[str, str] = field(default_factory=dict)

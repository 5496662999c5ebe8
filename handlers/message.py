"""The channel-neutral message model; each platform's `render.py` turns it into its wire format."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

# What str.splitlines() breaks on: inside a field any of these would let outside text
# (a buyer's reason, a nick) start a line of its own that looks like the bot's.
_BREAKS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with its line breaks made spaces."""
    return _BREAKS.sub(" ", text)


def _single_lines(item: object, names: tuple[str, ...]) -> None:
    """Make the named str (or tuple of str) attributes of a frozen dataclass single lines."""
    for name in names:
        value = getattr(item, name)
        if isinstance(value, str):
            flat: object = one_line(value)
        else:
            flat = tuple(one_line(v) if isinstance(v, str) else v for v in value)
        if flat != value:
            object.__setattr__(item, name, flat)


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


# An https address with nothing a markup could read as its end: no spaces, quotes, brackets.
SAFE_URL = re.compile(r"https://[A-Za-z0-9.-]+(/[A-Za-z0-9/_.~%?=&+-]*)?")


@dataclass(frozen=True)
class Field:
    """A label and its value; `url` (an https address made by refundops, never one typed by
    someone) makes the value a link."""

    label: str
    value: str
    url: str = ""

    def __post_init__(self) -> None:
        _single_lines(self, ("label", "value"))
        if self.url and not SAFE_URL.fullmatch(self.url):
            raise ValueError(f"not a link refundops makes: {self.url!r}")


@dataclass(frozen=True)
class Button:
    """`ask`: what the button cannot act without and a person must type (原因, 流水号); the
    platform asks for it where the tap happened instead of acting."""

    key: str
    text: str
    style: ButtonStyle = ButtonStyle.DEFAULT
    ask: str = ""


@dataclass(frozen=True)
class Pill:
    """A short mark beside a card's title (已超时, ⚠ 投诉风险), coloured by `tone`."""

    text: str
    tone: Tone = Tone.WARNING

    def __post_init__(self) -> None:
        _single_lines(self, ("text",))


@dataclass(frozen=True)
class Card:
    """One case as the group sees it; rebuilt from the case row on every change.

    `alert`: someone must look now (a missed platform deadline). Every channel shows it —
    the sandbox draws the card red, WeCom and DingTalk mark the title in red with ⛔."""

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
    pills: tuple[Pill, ...] = ()
    alert: bool = False

    def __post_init__(self) -> None:
        _single_lines(self, ("title", "status", "lines", "footer"))

    @property
    def summary(self) -> str:
        """One line for previews and message lists: ⛔ ahead when the card is an alert."""
        return f"{'⛔ ' if self.alert else ''}{self.title} — {self.marks}{self.status}"

    @property
    def marks(self) -> str:
        """The pills as text for channels that draw none: 【已超时】【⚠ 投诉风险】."""
        return "".join(f"【{p.text}】" for p in self.pills)


@dataclass(frozen=True)
class Notice:
    """A standalone card that belongs to no case (the daily digest); `key` names it uniquely."""

    key: str
    title: str
    status: str
    tone: Tone = Tone.INFO
    fields: tuple[Field, ...] = ()
    lines: tuple[str, ...] = ()
    footer: str = ""
    link: str = ""
    ref: str = ""
    buttons: tuple[Button, ...] = ()

    def __post_init__(self) -> None:
        _single_lines(self, ("title", "status", "lines", "footer"))

    def markdown(self, escape: Callable[[str], str] = str) -> str:
        """The notice as Markdown, for channels that take no cards (webhooks, DingTalk);
        `escape` is the platform's, for every string the notice carries."""
        e = escape
        parts = [f"### {e(self.title)}", f"**{e(self.status)}**", ""]
        parts += [f"- **{e(f.label)}**：{e(f.value)}" for f in self.fields]
        if self.lines:
            parts += ["", *(f"> {e(line)}" for line in self.lines)]
        if self.link:
            parts += ["", f"[查看看板]({self.link})"]
        elif self.footer:
            parts += ["", e(self.footer)]
        return "\n".join(parts)

    def plain(self) -> str:
        """The notice as plain lines, for an answer in chat."""
        lines = [self.title, self.status, *(f"{f.label}：{f.value}" for f in self.fields)]
        lines += [*self.lines, self.link or self.footer]
        return "\n".join(line for line in lines if line)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "tone": self.tone.value,
            "fields": [[f.label, f.value] for f in self.fields],
            "lines": list(self.lines),
            "footer": self.footer,
            "link": self.link,
            "ref": self.ref,
            "buttons": [[b.key, b.text, b.style.value] for b in self.buttons],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Notice:
        fields = data.get("fields", [])
        lines = data.get("lines", [])
        buttons = data.get("buttons", [])
        assert isinstance(fields, list)
        assert isinstance(lines, list)
        assert isinstance(buttons, list)
        return cls(
            key=str(data["key"]),
            title=str(data["title"]),
            status=str(data["status"]),
            tone=Tone(str(data.get("tone", "info"))),
            fields=tuple(Field(str(label), str(value)) for label, value in fields),
            lines=tuple(str(line) for line in lines),
            footer=str(data.get("footer", "")),
            link=str(data.get("link", "")),
            ref=str(data.get("ref", "")),
            buttons=tuple(Button(str(k), str(t), ButtonStyle(str(s))) for k, t, s in buttons),
        )


@dataclass(frozen=True)
class Reply:
    """What a command or a click answers, to the person who asked (or the group).

    `allow`: the case numbers (order, tracking …) the text shows on purpose, which masking
    personal data must leave alone.
    """

    text: str
    mentions: tuple[Mention, ...] = ()
    ok: bool = True
    card: Card | None = None
    extra: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()

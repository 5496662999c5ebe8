"""Card → WeCom: `template_card` (button_interaction) for the AI bot and the app, markdown for
webhooks and notices, plain text for app DMs. Limits are the ones docs 90236/94888 state.

Every string of the neutral model is plain text; what WeCom would read as markup in it is
neutralised here (`escape_markdown`, `escape_text`) before our own markup goes around it.

A button's key carries `action:handle:version` so a click names the case and the card
version the person saw; `task_id` is unique per app (a fresh suffix per placement).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.message import Button, ButtonStyle, Card, Field, Mention, Notice, Tone
from integrations.markdown import escape_markdown, no_links

MAX_BUTTONS = 6
MAX_FIELDS = 6
MAX_KEY_BYTES = 1024
MAX_TASK_ID_BYTES = 128
SOURCE_CHARS = 13
TITLE_CHARS = 26
DESC_CHARS = 30
SUBTITLE_CHARS = 112
KEYNAME_CHARS = 5
VALUE_CHARS = 26
BUTTON_CHARS = 10
MARKDOWN_BYTES = 4096
TEXT_BYTES = 2048

KEY = re.compile(r"^(?P<action>[a-z_]{1,32}):(?P<handle>[A-Za-z0-9_-]{1,64}):(?P<version>\d{1,9})$")
NOT_TASK_ID = re.compile(r"[^0-9A-Za-z_\-@]")
NOT_USERID = re.compile(r"[^0-9A-Za-z_\-@.]")
BUTTON_STYLE = {ButtonStyle.PRIMARY: 1, ButtonStyle.DEFAULT: 2, ButtonStyle.DANGER: 3}
# source.desc_color: 0 grey, 1 black, 2 red, 3 green.
TONE_COLOR = {Tone.INFO: 1, Tone.WARNING: 1, Tone.DANGER: 2, Tone.SUCCESS: 3, Tone.MUTED: 0}
TONE_FONT = {
    Tone.INFO: "info",
    Tone.WARNING: "warning",
    Tone.DANGER: "warning",
    Tone.SUCCESS: "info",
    Tone.MUTED: "comment",
}
DETAILS = Button("show", "查看详情")
# The title marker of a card that must be seen now (`Card.alert`), beside the red colour.
ALERT = "⛔"


@dataclass(frozen=True)
class Click:
    """A parsed button key."""

    action: str
    handle: str
    version: int


# Text messages of the app (doc 90236 "文本消息") render `<a href>` links.
TAGS = str.maketrans({"<": "＜", ">": "＞"})


def escape_text(text: str) -> str:
    """`text` for a WeCom text message: no `<a href>` link, no bare URL made a link."""
    return no_links(text.translate(TAGS))


def button_key(button: Button, card: Card) -> str:
    return f"{button.key}:{card.handle}:{card.version}"


def parse_key(key: str) -> Click | None:
    match = KEY.match(key)
    if match is None:
        return None
    return Click(match["action"], match["handle"], int(match["version"]))


def new_task_id(card: Card) -> str:
    """A task id no earlier card of this app can have used (handles restart with a new database)."""
    raw = f"{card.kind}-{card.handle}-{secrets.token_hex(6)}"
    return NOT_TASK_ID.sub("_", raw)[:MAX_TASK_ID_BYTES]


def clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def clip_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def template_card(card: Card, task_id: str, *, source: str = "refundops") -> dict[str, Any]:
    """The case as a `button_interaction` card (at most 6 rows and 6 buttons)."""
    fields = list(card.fields)
    shown, overflow = fields[:MAX_FIELDS], fields[MAX_FIELDS:]
    details = [f"{f.label}：{f.value} {f.url}".rstrip() for f in overflow] + list(card.lines)
    if card.footer:
        details.append(card.footer)
    buttons = list(card.buttons[:MAX_BUTTONS]) or [DETAILS]
    rendered: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {
            # The handle first: WeCom shows about 13 characters here, and R12 is what people type.
            "desc": clip(f"{card.handle} · {source}", SOURCE_CHARS),
            "desc_color": TONE_COLOR[card.tone],
        },
        "main_title": {
            "title": clip(f"{ALERT} {card.title}" if card.alert else card.title, TITLE_CHARS),
            "desc": clip(card.marks + card.status, DESC_CHARS),
        },
        "horizontal_content_list": [
            {"keyname": clip(f.label, KEYNAME_CHARS), "value": clip(f.value or "—", VALUE_CHARS)}
            | ({"type": 1, "url": f.url} if f.url else {})
            for f in shown
        ],
        "task_id": task_id,
        "button_list": [
            {
                "text": clip(b.text, BUTTON_CHARS),
                "style": BUTTON_STYLE[b.style],
                "key": button_key(b, card),
            }
            for b in buttons
        ],
    }
    if details:
        rendered["sub_title_text"] = clip(" · ".join(details), SUBTITLE_CHARS)
    return rendered


def mention_tokens(mentions: Iterable[Mention], userids: Mapping[str, str]) -> list[str]:
    """`<@userid>` for staff with a WeCom userid (a real @ in markdown), else `@name`."""
    tokens: list[str] = []
    for m in mentions:
        userid = userids.get(m.staff_id, "")
        token = f"<@{userid}>" if userid else f"@{m.name}"
        if token not in tokens:
            tokens.append(token)
    return tokens


def markdown_text(
    text: str, mentions: Iterable[Mention], userids: Mapping[str, str], *, asker: str = ""
) -> str:
    """Plain `text` as markdown, `asker` (a WeCom userid) @-mentioned first, `mentions` last."""
    asked = bool(asker) and NOT_USERID.search(asker) is None
    tokens = [t for t in mention_tokens(mentions, userids) if not (asked and t == f"<@{asker}>")]
    body = escape_markdown(text)
    body = f"{body} {' '.join(tokens)}" if tokens else body
    if asked:
        body = f"<@{asker}> {body}"
    return clip_bytes(body, MARKDOWN_BYTES)


def linked(field: Field) -> str:
    """A field's value for markdown, as a link when it has one."""
    value = escape_markdown(field.value)
    return f"[{value}]({field.url})" if field.url else value


def markdown_card(card: Card, userids: Mapping[str, str], *, hint: str = "") -> str:
    """The card for a group that cannot click (webhook robots): every field, then who to @."""
    e = escape_markdown
    head = f"**{e(card.title)}**"
    if card.alert:
        head = f'<font color="warning">**{ALERT} {e(card.title)}**</font>'
    if card.pills:
        head += f' <font color="warning">{e(card.marks)}</font>'
    lines = [head, f'> 状态：<font color="{TONE_FONT[card.tone]}">{e(card.status)}</font>']
    lines += [f"> {e(f.label)}：{linked(f)}" for f in card.fields]
    lines += [e(line) for line in card.lines]
    if card.footer:
        lines.append(f'<font color="comment">{e(card.footer)}</font>')
    if hint:
        lines.append(f'<font color="comment">{hint}</font>')
    tokens = mention_tokens(card.mentions, userids)
    if tokens:
        lines.append(" ".join(tokens))
    return clip_bytes("\n".join(lines), MARKDOWN_BYTES)


def markdown_notice(notice: Notice) -> str:
    """A standalone card (the daily digest, a batch) as WeCom markdown, within its size limit."""
    return clip_bytes(notice.markdown(escape_markdown), MARKDOWN_BYTES)


def plain_notice(notice: Notice) -> str:
    """The same for app DMs, which take no markdown."""
    lines = [notice.title, notice.status, *(f"{f.label}：{f.value}" for f in notice.fields)]
    lines += notice.lines
    text = escape_text("\n".join(line for line in lines if line))
    end = notice.link or escape_text(notice.footer)
    return clip_bytes(f"{text}\n{end}" if end else text, TEXT_BYTES)


def mention_line(card: Card) -> str:
    """The line after a new card that @-mentions who must act (an AI bot's card cannot)."""
    return f"请处理 {card.handle}：{card.status}"


def follow_up(card: Card) -> str:
    """The line that stands in for a card edit the platform no longer allows."""
    line = f"📌 {ALERT + ' ' if card.alert else ''}{card.handle} 更新：{card.marks}{card.status}"
    return f"{line}（{card.footer}）" if card.footer else line


def plain_text(text: str, mentions: Iterable[Mention] = ()) -> str:
    """Text for app DMs and passive replies (no markdown there): mentions become names."""
    names = " ".join(f"@{m.name}" for m in mentions)
    text = escape_text(text)
    return clip_bytes(f"{text} {names}" if names else text, TEXT_BYTES)

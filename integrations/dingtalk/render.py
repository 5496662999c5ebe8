"""Card → DingTalk: the card template's `cardParamMap`, custom-robot markdown, robot text.

`cardParamMap` values are all strings (lists are JSON-encoded, booleans "true"/"false");
its keys are the variables of templates/refund_card.json. Robot messages are cut to fit
DingTalk's byte limits rather than refused.

Every string of the neutral model is plain text; what DingTalk would read as markup in it is
neutralised here (`escape_markdown`, `escape_text`) before our own markup goes around it.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from importlib import resources

from handlers.message import Card, Notice, Tone
from integrations.dingtalk.models import At, Markdown, RobotSend, Text
from integrations.markdown import escape_markdown, no_links

# The buttons the shipped card template has, by action id (= Button.key), in its order: every
# button a case card can carry, and a batch card's (approve_all, list). A card button outside
# this list does not show on DingTalk.
BUTTONS = (
    "approve",
    "reject",
    "claim",
    "retry",
    "refunded",
    "intercept",
    "templates",
    "intercepted",
    "intercept_failed",
    "reship",
    "contact_carrier",
    "ignore",
    "paid",
    "repay",
    "recheck",
    "unbatch",
    "approve_all",
    "list",
)
TEMPLATE = "dingtalk/templates/refund_card.json"
TAG_COLORS = {
    Tone.INFO: "blue",
    Tone.WARNING: "orange",
    Tone.SUCCESS: "green",
    Tone.DANGER: "red",
    Tone.MUTED: "gray",
}
# The title marker of a card that must be seen now (`Card.alert`), and the markdown colours.
ALERT = "⛔"
RED = "#D40000"
ORANGE = "#E57300"
ROBOT_MAX_BYTES = 20_000
MSG_PARAM_MAX_BYTES = 15_000
# Work notifications are cut well within what a text message takes.
WORK_NOTICE_MAX_BYTES = 2_048
CUT = "\n…（内容过长，已截断）"
# outTrackId: at most 100 characters, 64 or fewer advised (createAndDeliver doc).
MAX_TRACK_ID_CHARS = 64
NOT_TRACK_ID = re.compile(r"[^A-Za-z0-9_-]")


@functools.cache
def template_colors() -> dict[str, str]:
    """Each button of the shipped card template by action id → the colour the template gives
    it (DingTalk draws a template's buttons in its own colours, whatever the card says)."""
    raw = resources.files("integrations").joinpath(TEMPLATE).read_text("utf-8")
    editor = json.loads(json.loads(raw)["editorData"])
    (root,) = editor["schema"]["componentsTree"]
    block = next(c for c in root["children"] if c["componentName"] == "ButtonBlock")
    return {str(b["id"]): str(b.get("color", "blue")) for b in block["props"]["buttons"]}


def escape_text(text: str) -> str:
    """`text` for a robot text message: `@id` in it mentions nobody, a bare URL is no link."""
    return no_links(text.replace("@", "＠"))


@dataclass(frozen=True)
class Who:
    """Someone to @-mention, as DingTalk knows them (staff id, else mobile, else just a name)."""

    name: str
    user_id: str = ""
    mobile: str = ""

    @property
    def at(self) -> str:
        return f"@{self.user_id or self.mobile or self.name}"


def new_out_track_id(card: Card) -> str:
    """A card instance id no other deployment or database on the same DingTalk app can have
    used (handles restart at R1 there too). Stored with the card; every change updates the
    card under this id."""
    raw = f"{card.kind}-{card.handle}-{secrets.token_hex(8)}"
    return NOT_TRACK_ID.sub("_", raw)[-MAX_TRACK_ID_CHARS:]


def open_space_id(open_conversation_id: str) -> str:
    return f"dtv1.card//IM_GROUP.{open_conversation_id}"


def card_params(card: Card) -> dict[str, str]:
    params = {
        "lastMessage": card.summary,
        "title": f"{ALERT} {card.title}" if card.alert else card.title,
        "status": card.status,
        "tone": card.tone.value,
        "tag_color": TAG_COLORS.get(card.tone, "blue"),
        "handle": card.handle,
        "case_id": card.case_id,
        "kind": card.kind,
        "state": card.state,
        "version": str(card.version),
        "markdown": body_markdown(card),
        "fields": json.dumps(
            [
                {"label": f.label, "value": f.value} | ({"url": f.url} if f.url else {})
                for f in card.fields
            ],
            ensure_ascii=False,
        ),
        "footer": card.footer,
        "mentions": "、".join(m.name for m in card.mentions),
        "buttons": json.dumps(
            [{"key": b.key, "text": b.text, "style": b.style.value} for b in card.buttons],
            ensure_ascii=False,
        ),
    }
    shown = {b.key: b for b in card.buttons}
    for key in BUTTONS:
        button = shown.get(key)
        params[f"{key}_visible"] = "true" if button else "false"
        params[f"{key}_text"] = button.text if button else ""
    return params


def notice_card(notice: Notice) -> Card:
    """A standalone card with buttons (a batch card, F3) as the template draws it: its handle
    is the notice's reference, which its buttons carry back."""
    return Card(
        case_pk=0,
        case_id=notice.key,
        handle=notice.ref,
        kind="notice",
        state="",
        version=0,
        title=notice.title,
        status=notice.status,
        tone=notice.tone,
        fields=notice.fields,
        buttons=notice.buttons,
        lines=notice.lines,
        footer=notice.footer,
    )


def tappable(notice: Notice) -> bool:
    """Whether the notice goes as an interactive card: it has buttons the template has, and a
    reference for them to carry."""
    return bool(notice.ref and notice.buttons) and all(b.key in BUTTONS for b in notice.buttons)


def body_markdown(card: Card) -> str:
    """The fields and lines, the card's pills (已超时 …) in colour above them."""
    e = escape_markdown
    lines = [
        f"**{e(f.label)}**：" + (f"[{e(f.value)}]({f.url})" if f.url else e(f.value))
        for f in card.fields
    ]
    if card.pills:
        lines.insert(0, f"<font color={RED if card.alert else ORANGE}>{e(card.marks)}</font>")
    lines += [e(line) for line in card.lines]
    return "\n\n".join(lines)


def title_markdown(card: Card) -> str:
    """The card's title, in red behind ⛔ when it must be seen now."""
    e = escape_markdown
    return f"<font color={RED}>{ALERT} {e(card.title)}</font>" if card.alert else e(card.title)


def card_markdown(card: Card, mentions: tuple[Who, ...]) -> Markdown:
    """The whole card for a custom robot, which can neither edit messages nor call back."""
    text = [
        f"### {title_markdown(card)}",
        f"**{escape_markdown(card.status)}**",
        body_markdown(card),
    ]
    if card.footer:
        text.append(f"<font color=#888888>{escape_markdown(card.footer)}</font>")
    if mentions:
        text.append(" ".join(w.at for w in mentions))
    return Markdown(title=card.summary, text="\n\n".join(text))


def change_markdown(card: Card, mentions: tuple[Who, ...]) -> Markdown:
    """A later change, as one short line naming the handle (the first message stays as sent)."""
    e = escape_markdown
    line = f"**{e(card.handle)}** {title_markdown(card)} → **{e(card.status)}**"
    if card.footer:
        line += f"（{e(card.footer)}）"
    if mentions:
        line += "\n\n" + " ".join(w.at for w in mentions)
    return Markdown(title=card.summary, text=line)


def mentioned(text: str, mentions: tuple[Who, ...], *, by_name: bool = False) -> str:
    """`@id … text`: DingTalk shows an @id listed in `at` as the person's name."""
    text = escape_text(text)
    if not mentions:
        return text
    return " ".join(f"@{w.name}" if by_name else w.at for w in mentions) + " " + text


def at_of(mentions: tuple[Who, ...]) -> At:
    return At(
        at_user_ids=[w.user_id for w in mentions if w.user_id],
        at_mobiles=[w.mobile for w in mentions if w.mobile and not w.user_id],
    )


def robot_text(text: str, mentions: tuple[Who, ...] = ()) -> RobotSend:
    message = RobotSend(
        msgtype="text", text=Text(content=mentioned(text, mentions)), at=at_of(mentions)
    )
    return _fit_message(message)


def robot_markdown(markdown: Markdown, mentions: tuple[Who, ...] = ()) -> RobotSend:
    return _fit_message(RobotSend(msgtype="markdown", markdown=markdown, at=at_of(mentions)))


def encode(body: dict[str, object]) -> bytes:
    """The exact bytes sent: UTF-8 JSON (DingTalk's limits count bytes, not characters)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def group_message(text: str, mentions: tuple[Who, ...] = ()) -> tuple[str, str]:
    """(msgKey, msgParam) for the open API's robot messages; msgParam ≤ 15,000 bytes.

    These messages cannot carry `at`, so people are named rather than notified.
    """
    content = mentioned(text, mentions, by_name=True)
    room = MSG_PARAM_MAX_BYTES - len(encode({"content": ""}))
    for _ in range(4):
        param = encode({"content": fit(content, room)})
        if len(param) <= MSG_PARAM_MAX_BYTES:
            break
        room -= len(param) - MSG_PARAM_MAX_BYTES + 16
    return "sampleText", param.decode()


def work_notice(text: str, group: str) -> str:
    """A group line as a work notification: the words and the group they were said in, within
    the text message's size (cut like robot messages; no @ or link in it)."""
    return fit(f"{escape_text(text)}\n—— 来自群「{escape_text(group)}」", WORK_NOTICE_MAX_BYTES)


def notice_markdown(notice: Notice) -> Markdown:
    """A standalone card (the daily digest) as robot Markdown."""
    return Markdown(title=notice.title, text=notice.markdown(escape_markdown))


def group_markdown(markdown: Markdown) -> tuple[str, str]:
    """(msgKey, msgParam) of an open-API group message in Markdown, within 15,000 bytes."""
    room = MSG_PARAM_MAX_BYTES - len(encode({"title": markdown.title, "text": ""}))
    param = encode({"title": markdown.title, "text": fit(markdown.text, room)})
    return "sampleMarkdown", param.decode()


def fit(text: str, max_bytes: int) -> str:
    """`text` cut on a character boundary so that its UTF-8 form is at most `max_bytes`."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    room = max(0, max_bytes - len(CUT.encode()))
    return raw[:room].decode(errors="ignore") + CUT


def _fit_message(message: RobotSend) -> RobotSend:
    for _ in range(4):
        excess = len(encode(message.dump())) - ROBOT_MAX_BYTES
        if excess <= 0:
            break
        message = _shorten(message, excess + 16)
    return message


def _shorten(message: RobotSend, by: int) -> RobotSend:
    if message.text is not None:
        raw = message.text.content
        return message.model_copy(update={"text": Text(content=fit(raw, len(raw.encode()) - by))})
    if message.markdown is not None:
        raw = message.markdown.text
        short = Markdown(title=message.markdown.title, text=fit(raw, len(raw.encode()) - by))
        return message.model_copy(update={"markdown": short})
    return message

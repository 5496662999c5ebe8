"""Card → the sandbox's JSON (the shape of DESIGN §2's message list), and each message as the
platforms would show it: the page's 企业微信 and 钉钉 views draw what `platform` holds, made
by those platforms' own renderers, and show only the messages that platform's group gets.

A message's `meta` says how a platform would have carried it (`via`):

- `answer`: the answer to a typed command (every platform answers it, @-ing for real);
- `tap`: the answer to a tap; `quiet` when the redrawn card is the whole answer (WeCom and
  DingTalk then say nothing);
- `line`: the bot's own line (reminders, escalations): a DingTalk robot group message can
  @ nobody, so there the names are plain words and the people are told apart (`notify`);
- `wecom`: a line only a WeCom group gets: a card change the AI bot could not draw in place
  (outside the 5 s after a tap), or the @ that follows a new card (its cards cannot @).

A card's `meta.wecom` is the card as a WeCom group still shows it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from handlers.message import Button, ButtonStyle, Card, Field, Mention, Notice, Tone
from integrations.dingtalk import render as dingtalk
from integrations.wecom import render as wecom
from storage.models import SandboxMessage

VIEWS = ("sandbox", "wecom", "dingtalk")
PREVIEW_TASK_ID = "sandbox-preview"


class Via(StrEnum):
    ANSWER = "answer"
    TAP = "tap"
    LINE = "line"
    WECOM = "wecom"


def render_card(card: Card) -> dict[str, Any]:
    return {
        "title": card.title,
        "status": card.status,
        "tone": card.tone.value,
        "fields": [field(f) for f in card.fields],
        "buttons": [button(b) for b in card.buttons],
        "lines": list(card.lines),
        "footer": card.footer,
        "mentions": [m.name for m in card.mentions],
        "pills": [{"text": p.text, "tone": p.tone.value} for p in card.pills],
        "alert": card.alert,
        "handle": card.handle,
        "case_id": card.case_id,
        "kind": card.kind,
        "state": card.state,
        "version": card.version,
    }


def render_notice(notice: Notice) -> dict[str, Any]:
    return {
        "title": notice.title,
        "status": notice.status,
        "tone": notice.tone.value,
        "fields": [field(f) for f in notice.fields],
        "buttons": [{"key": b.key, "text": b.text, "style": b.style.value} for b in notice.buttons],
        "lines": list(notice.lines),
        "footer": notice.footer + (f" {notice.link}" if notice.link else ""),
        "mentions": [],
        "handle": notice.ref or None,
        "case_id": None,
        "state": None,
        "notice": notice.key,
    }


def render_text(text: str, mentions: tuple[Mention, ...]) -> str:
    if not mentions:
        return text
    return " ".join(dict.fromkeys(f"@{m.name}" for m in mentions)) + " " + text


def message_json(message: SandboxMessage) -> dict[str, Any]:
    card = message.card
    meta = message.meta or {}
    return {
        "id": message.id,
        "group": message.group_id,
        "kind": message.kind,
        "author": message.author,
        "text": message.text,
        "case_id": card["case_id"] if card else None,
        "handle": card["handle"] if card else None,
        "state": card["state"] if card else None,
        "card": (
            {
                k: card[k]
                for k in (
                    "title",
                    "status",
                    "tone",
                    "fields",
                    "buttons",
                    "lines",
                    "footer",
                    "mentions",
                )
            }
            | {
                "version": card.get("version"),
                "pills": card.get("pills", []),
                "alert": card.get("alert", False),
            }
            if card
            else None
        ),
        "via": str(meta.get("via", "")),
        "views": views(message),
        "plain_at": ["dingtalk"] if meta.get("via") in (Via.LINE, Via.TAP) else [],
        "notify": list(meta.get("notify", [])),
        "platform": platform_views(card, meta) if card else None,
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
    }


def views(message: SandboxMessage) -> list[str]:
    """The views whose group gets this message."""
    meta = message.meta or {}
    via = meta.get("via")
    if via == Via.WECOM:
        return ["wecom"]
    if via == Via.TAP and meta.get("quiet"):
        return ["sandbox"]
    return list(VIEWS)


def platform_views(card: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The card as each platform draws it: WeCom the version its group still shows, DingTalk
    the newest (its cards change in place any time), through the template's buttons only."""
    if card.get("notice") is not None or not card.get("case_id"):
        notice = notice_of(card)
        ding: dict[str, Any] = {"markdown": dingtalk.notice_markdown(notice).text}
        if dingtalk.tappable(notice):
            ding = dingtalk_card(dingtalk.notice_card(notice))
        return {"wecom": {"markdown": wecom.markdown_notice(notice)}, "dingtalk": ding}
    shown = meta.get("wecom") or card
    return {
        "wecom": {
            "template_card": wecom.template_card(card_of(shown), PREVIEW_TASK_ID),
            "version": shown.get("version"),
            "drawn_at": meta.get("wecom_at"),
        },
        "dingtalk": dingtalk_card(card_of(card)),
    }


def dingtalk_card(drawn: Card) -> dict[str, Any]:
    """The card as DingTalk draws the shipped template with refundops' card data."""
    params = dingtalk.card_params(drawn)
    colors = dingtalk.template_colors()
    return {
        "title": params["title"],
        "status": params["status"],
        "tag_color": params["tag_color"],
        "markdown": params["markdown"],
        "footer": params["footer"],
        "buttons": [
            {"key": key, "text": params[f"{key}_text"], "color": colors.get(key, "blue")}
            for key in dingtalk.BUTTONS
            if params[f"{key}_visible"] == "true"
        ],
        "left_out": [b.text for b in drawn.buttons if b.key not in dingtalk.BUTTONS],
    }


def card_of(data: dict[str, Any]) -> Card:
    """The neutral card a stored sandbox card was drawn from."""
    return Card(
        case_pk=0,
        case_id=str(data.get("case_id") or ""),
        handle=str(data.get("handle") or ""),
        kind=str(data.get("kind") or "case"),
        state=str(data.get("state") or ""),
        version=int(data.get("version") or 0),
        title=str(data["title"]),
        status=str(data["status"]),
        tone=Tone(str(data.get("tone", "info"))),
        fields=tuple(
            Field(str(f["label"]), str(f["value"]), str(f.get("url", "")))
            for f in data.get("fields", [])
        ),
        buttons=tuple(
            Button(str(b["key"]), str(b["text"]), ButtonStyle(b["style"]), str(b.get("ask", "")))
            for b in data.get("buttons", [])
        ),
        lines=tuple(str(line) for line in data.get("lines", [])),
        footer=str(data.get("footer", "")),
        mentions=tuple(Mention(str(n), str(n)) for n in data.get("mentions", [])),
    )


def notice_of(data: dict[str, Any]) -> Notice:
    return Notice(
        key=str(data.get("notice") or ""),
        title=str(data["title"]),
        status=str(data["status"]),
        tone=Tone(str(data.get("tone", "info"))),
        fields=tuple(Field(str(f["label"]), str(f["value"])) for f in data.get("fields", [])),
        lines=tuple(str(line) for line in data.get("lines", [])),
        footer=str(data.get("footer", "")),
        ref=str(data.get("handle") or ""),
        buttons=tuple(
            Button(str(b["key"]), str(b["text"]), ButtonStyle(b["style"]))
            for b in data.get("buttons", [])
        ),
    )


def button(b: Button) -> dict[str, str]:
    """A card button; `ask` when the page must ask for words (a reason, a 流水号) first."""
    return {"key": b.key, "text": b.text, "style": b.style.value} | (
        {"ask": b.ask} if b.ask else {}
    )


def field(f: Field) -> dict[str, str]:
    return {"label": f.label, "value": f.value} | ({"url": f.url} if f.url else {})

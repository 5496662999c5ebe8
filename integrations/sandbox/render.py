"""Card → the sandbox's JSON (the shape of DESIGN §2's message list)."""

from __future__ import annotations

from typing import Any

from handlers.message import Card, Field, Mention, Notice
from storage.models import SandboxMessage


def render_card(card: Card) -> dict[str, Any]:
    return {
        "title": card.title,
        "status": card.status,
        "tone": card.tone.value,
        "fields": [field(f) for f in card.fields],
        "buttons": [{"key": b.key, "text": b.text, "style": b.style.value} for b in card.buttons],
        "lines": list(card.lines),
        "footer": card.footer,
        "mentions": [m.name for m in card.mentions],
        "pills": [{"text": p.text, "tone": p.tone.value} for p in card.pills],
        "alert": card.alert,
        "handle": card.handle,
        "case_id": card.case_id,
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
        "created_at": message.created_at.isoformat(),
        "updated_at": message.updated_at.isoformat(),
    }


def field(f: Field) -> dict[str, str]:
    return {"label": f.label, "value": f.value} | ({"url": f.url} if f.url else {})

"""The buyer conversation as a case keeps it: the last buyer message, the last replies and
whether the buyer still waits for an answer, and how the card shows them.

Kept in `case.data`: `buyer_message` {n, text, at}, `replies` [{n, by, at, text, template,
key, status, detail}] (the last few), `awaiting_reply` {n, since} while a message is unanswered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.context import Tx
from storage.models import Case

BUYER_MESSAGE = "buyer_message"
REPLIES = "replies"
AWAITING = "awaiting_reply"
KEEP_REPLIES = 5
SHORT = 60

STATUS_TEXT = {
    "queued": "发送中",
    "sent": "已送达",
    "accepted": "店铺系统已接收",
    "manual": "未发送",
    "failed": "未送达",
}


def awaiting_reply(case: Case) -> bool:
    return bool(case.data.get(AWAITING))


def replies(case: Case) -> list[dict[str, Any]]:
    return [dict(r) for r in case.data.get(REPLIES, [])]


def short(text: str, limit: int = SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_lines(case: Case, tx: Tx) -> list[str]:
    """The last buyer message and the last reply, oldest first, and undelivered replies."""
    timed: list[tuple[str, str]] = []
    if message := case.data.get(BUYER_MESSAGE):
        waiting = "（待回复）" if awaiting_reply(case) else ""
        timed.append(
            (
                message["at"],
                f"🗨 买家 {_at(tx, message['at'])}：{short(message['text'])}{waiting}",
            )
        )
    sent = replies(case)
    if sent:
        last = sent[-1]
        who = tx.svc.staff.name(last["by"])
        template = f"（#{last['template']}）" if last.get("template") else ""
        status = STATUS_TEXT.get(last["status"], last["status"])
        timed.append(
            (
                last["at"],
                f"💬 {who} {_at(tx, last['at'])} 回复买家{template}：{short(last['text'])} · {status}",
            )
        )
    lines = [line for _, line in sorted(timed, key=lambda t: datetime.fromisoformat(t[0]))]
    delivered = max((r["n"] for r in sent if r["status"] in ("sent", "accepted")), default=0)
    for reply in sent:
        if reply["status"] == "failed" and reply["n"] > delivered:
            lines.append(
                f"⚠ {_at(tx, reply['at'])} 给买家的回复未送达：{short(reply.get('detail', ''), 80)}"
            )
        elif reply is sent[-1] and reply["status"] == "manual":
            lines.append(f"⚠ {short(reply.get('detail', ''), 80)}")
        elif reply is sent[-1] and reply["status"] == "accepted" and reply.get("detail"):
            lines.append(f"ℹ 店铺系统：{short(reply['detail'], 80)}")
    return lines


def _at(tx: Tx, iso: str) -> str:
    return f"{tx.local(datetime.fromisoformat(iso)):%m-%d %H:%M}"

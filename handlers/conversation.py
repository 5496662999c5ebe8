"""The buyer conversation as a refund keeps it: the last buyer message, the last replies and
whether the buyer still waits for an answer, and how the card shows them.

Kept in `RefundData`: `buyer_message`, `replies` (the last few), `awaiting_reply` while a
message is unanswered.
"""

from __future__ import annotations

from datetime import datetime

from handlers.refund.data import RefundData, ReplyRecord
from handlers.view import CardContext
from storage.models import Case

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
    return RefundData.of(case).awaiting_reply is not None


def replies(case: Case) -> list[ReplyRecord]:
    return RefundData.of(case).replies


def short(text: str, limit: int = SHORT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_lines(case: Case, ctx: CardContext) -> list[str]:
    """The last buyer message and the last reply, oldest first, and undelivered replies."""
    data = RefundData.of(case)
    timed: list[tuple[str, str]] = []
    if (message := data.buyer_message) is not None:
        waiting = ""
        if (awaiting := data.awaiting_reply) is not None:
            waiting = "（超时未回复）" if awaiting.overdue else "（待回复）"
        timed.append((message.at, f"🗨 买家 {_at(ctx, message.at)}：{short(message.text)}{waiting}"))
    sent = data.replies
    if sent:
        last = sent[-1]
        who = ctx.staff.name(last.by)
        template = f"（#{last.template}）" if last.template else ""
        status = STATUS_TEXT.get(last.status, last.status)
        timed.append(
            (
                last.at,
                f"💬 {who} {_at(ctx, last.at)} 回复买家{template}：{short(last.text)} · {status}",
            )
        )
    lines = [line for _, line in sorted(timed, key=lambda t: datetime.fromisoformat(t[0]))]
    delivered = max((r.n for r in sent if r.status in ("sent", "accepted")), default=0)
    for reply in sent:
        if reply.status == "failed" and reply.n > delivered:
            lines.append(f"⚠ {_at(ctx, reply.at)} 给买家的回复未送达：{short(reply.detail, 80)}")
        elif reply is sent[-1] and reply.status == "manual":
            lines.append(f"⚠ {short(reply.detail, 80)}")
        elif reply is sent[-1] and reply.status == "accepted" and reply.detail:
            lines.append(f"ℹ 店铺系统：{short(reply.detail, 80)}")
    return lines


def _at(ctx: CardContext, iso: str) -> str:
    return f"{ctx.local(datetime.fromisoformat(iso)):%m-%d %H:%M}"

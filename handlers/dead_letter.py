"""Dead-lettered deliveries put back in the outbox, by kind and since a time.

Only deliveries are sent again (cards, group lines, digests, WeCom replies): giving them up
changed no case. A refund, transfer or intercept that was given up has already moved its case
(to failed, with the admins told); it is redone from that case (重试 / 重新打款 / 拦截), where
authority and the current amount are checked again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from handlers.context import Tx
from handlers.errors import UsageError

RESENDABLE = ("card", "text", "notice", "wecom.reply")
AGO = re.compile(r"^(\d{1,4})\s*(m|min|分钟|h|小时|d|天)$")
UNITS = {"m": 60, "min": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": 86400, "天": 86400}


@dataclass(frozen=True)
class Requeued:
    count: int
    left: dict[str, int] = field(default_factory=dict)  # dead items of other kinds, by kind


async def requeue(tx: Tx, kind: str = "", since: datetime | None = None) -> Requeued:
    """Put dead deliveries (of `kind`, dead since `since`) back, due now with no attempt spent."""
    if kind and kind not in RESENDABLE:
        raise UsageError(
            f"「{kind}」不能重发：只能重发 {' / '.join(RESENDABLE)}；"
            "退款、打款、拦截请在单据上用 重试 / 重新打款 / 拦截"
        )
    kinds = [kind] if kind else list(RESENDABLE)
    count = await tx.outbox.requeue_dead(kinds, since=since, now=tx.now)
    left = {k: n for k, n in (await tx.outbox.dead_counts(since=since)).items() if k not in kinds}
    return Requeued(count, left)


def parse_since(text: str, now: datetime, tz: tzinfo) -> datetime:
    """`2h` / `30m` / `1d` ago, or an ISO date or time (local unless it names its zone)."""
    text = text.strip()
    ago = AGO.match(text)
    if ago:
        return now - timedelta(seconds=int(ago.group(1)) * UNITS[ago.group(2)])
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"时间「{text[:30]}」看不懂：写 2h、30m、1d 或 2026-11-23 10:00") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=tz)


def looks_like_time(text: str) -> bool:
    return bool(AGO.match(text.strip())) or text[:1].isdigit()

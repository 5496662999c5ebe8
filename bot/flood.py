"""Flood control: when a group's sending budget runs short, waiting cards become one batch card.

The batch card (F3) counts the cases and their amounts, names every handle, and offers
"approve all eligible" and "list"; nothing is dropped and the platform's limit is never
exceeded. A folded case gets a card of its own at its next change once the rush is over.
"""

from __future__ import annotations

from collections import Counter

from handlers.cards import build_card
from handlers.config import GroupSettings
from handlers.context import Tx
from handlers.message import Button, ButtonStyle, Field, Notice, Tone
from handlers.money import format_fen
from handlers.refund.machine import NEEDS_PERSON
from storage.models import Case, Fold, OutboxItem

FOLD_REF = "fold:"


def folded(ref: str) -> bool:
    return ref.startswith(FOLD_REF)


async def backlog(tx: Tx, group_id: str, limit: int) -> list[OutboxItem]:
    """Card items waiting for this group, oldest first."""
    return await tx.outbox.pending_for_group(group_id, "card", limit=limit)


async def fold_notice(tx: Tx, group: GroupSettings, cases: list[Case]) -> Notice:
    key = await tx.cases.next_number("F")
    tx.session.add(
        Fold(
            key=key,
            group_id=group.id,
            case_pks=[c.id for c in cases],
            versions={str(c.id): c.version for c in cases},
            created_at=tx.now,
        )
    )
    decide = [c for c in cases if c.state in NEEDS_PERSON]
    total = sum(c.amount_fen for c in cases)
    by_status = Counter(build_card(c, tx.view).status for c in cases)
    listing = [
        f"{c.handle} {format_fen(c.amount_fen)} {build_card(c, tx.view).status}" for c in cases
    ]
    lines = [" · ".join(listing[i : i + 4]) for i in range(0, len(listing), 4)]
    return Notice(
        key=f"fold:{group.id}:{key}",
        ref=key,
        title=f"⚡ {len(cases)} 个单据更新（消息过多，已合并为一张卡片 {key}）",
        status=f"合计 {format_fen(total)} · 待审核 {len(decide)}",
        tone=Tone.WARNING if decide else Tone.INFO,
        fields=tuple(Field(status, str(n)) for status, n in by_status.most_common()),
        lines=tuple(lines),
        footer=f"「全部通过 {key}」批准其中你有权限的待审核单据；「列表 {key}」查看最新状态",
        buttons=(
            Button("approve_all", f"全部通过可批准的（{len(decide)}）", ButtonStyle.PRIMARY),
            Button("list", "列表"),
        )
        if decide
        else (Button("list", "列表"),),
    )

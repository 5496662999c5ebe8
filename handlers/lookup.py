"""Finding cases by what people have at hand: a handle or full id, an order number, a tracking
number (the parcel's or the return's), the buyer's nick — only among the cases a place may see.

What a case is known by is read from its `data` (handlers.case_keys) and kept beside it by the
case repository, so a lookup is an index search, never a scan of every case's JSON.
"""

from __future__ import annotations

from collections.abc import Collection

from handlers.case_keys import NICK, TRACKING, normalize
from handlers.context import Tx
from storage.models import Case


async def find(tx: Tx, text: str, *, groups: Collection[str] | None, limit: int = 50) -> list[Case]:
    """The cases `text` may name by order number, tracking number or buyer nick, newest first;
    only of `groups` (None: every group), so nothing of another group is even read."""
    text = text.strip()
    if not text:
        return []
    keys = {(TRACKING, normalize(TRACKING, text)), (NICK, normalize(NICK, text))}
    tracking = {text, normalize(TRACKING, text)}
    return await tx.cases.known_by(
        {(k, v) for k, v in keys if v},
        order_id=text,
        tracking_nos=tracking,
        groups=groups,
        limit=limit,
    )

"""Under which ids a payout goes: the payout id of a chat request, and the order number
Alipay deduplicates on."""

from __future__ import annotations

import hashlib
import re
import uuid

OUT_BIZ_NO = re.compile(r"[A-Za-z0-9_-]{1,58}")


def out_biz_no(payout_id: str, attempt: int) -> str:
    """Alipay's idempotency key: the payout id, and `_<n>` for a retry after a final failure."""
    base = payout_id
    if not OUT_BIZ_NO.fullmatch(payout_id):
        base = "PO" + hashlib.sha256(payout_id.encode()).hexdigest()[:30].upper()
    return base if attempt <= 1 else f"{base}_{attempt}"


def command_payout_id(input_id: str) -> str:
    """One chat message makes at most one payout, however often the platform delivers it."""
    seed = input_id or uuid.uuid4().hex
    return "PO" + hashlib.sha256(seed.encode()).hexdigest()[:16].upper()


def batch_id(input_id: str) -> str:
    """One chat message makes at most one batch."""
    seed = (input_id or uuid.uuid4().hex).encode()
    return "PB" + hashlib.sha256(seed).hexdigest()[:14].upper()

"""Who is paid and under which ids: the payee as a card may show them, the payout id of a
chat request, and the order number Alipay deduplicates on."""

from __future__ import annotations

import hashlib
import re
import uuid

OUT_BIZ_NO = re.compile(r"[A-Za-z0-9_-]{1,58}")


def mask_account(account: str) -> str:
    """138****8000, 2088****1234, zh****@example.com: enough to recognise, not to reuse."""
    account = account.strip()
    if "@" in account:
        local, _, domain = account.rpartition("@")
        keep = min(3, max(1, len(local) // 2)) if len(local) > 1 else 0
        return f"{local[:keep]}****@{domain}"
    if len(account) >= 7:
        return f"{account[:3]}****{account[-4:]}"
    if len(account) >= 3:
        return f"{account[0]}****{account[-1]}"
    return "****"


def mask_name(name: str) -> str:
    """王小明 → 王**; a name the platform already masked stays as it is."""
    name = name.strip()
    if not name or "*" in name:
        return name
    return name[0] + "*" * min(len(name) - 1, 3) if len(name) > 1 else name


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

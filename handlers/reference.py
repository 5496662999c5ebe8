"""Which case a typed reference names.

`#R12` is always the card handle R12. A bare `R12` is a handle or a full id (a refund or
payout id from the shop); when it is both — a platform whose refund ids look like handles —
chat asks which one is meant, since money moves on the answer, and the API, whose clients
send ids, takes the id and says that the handle names another case.
"""

from __future__ import annotations

from handlers.context import Tx
from handlers.errors import UsageError
from storage.models import Case

HANDLE_MARKS = ("#", "＃")
KIND_TEXT = {
    "refund": "退款",
    "intercept": "拦截",
    "payout": "打款",
    "payout_batch": "批量打款",
    "anomaly": "物流异常",
}


class AmbiguousReferenceError(UsageError):
    """A bare reference names several cases; `cases` are they."""

    def __init__(self, message: str, cases: list[Case]) -> None:
        super().__init__(message)
        self.cases = cases


def explicit_handle(ref: str) -> str | None:
    """`#R12` → "R12"; None when `ref` is not marked as a handle."""
    ref = ref.strip()
    for mark in HANDLE_MARKS:
        if ref.startswith(mark):
            return ref[len(mark) :].strip().upper()
    return None


def handle_ref(handle: str) -> str:
    """A reference that can only mean this handle (what a button passes)."""
    return f"#{handle}"


async def find(tx: Tx, ref: str) -> Case | None:
    """The case `ref` names in chat; a bare reference that names two is refused, naming both."""
    handle = explicit_handle(ref)
    if handle is not None:
        return await tx.cases.by_handle(handle)
    found = await tx.cases.matching(ref)
    if len(found) > 1:
        raise AmbiguousReferenceError(_which(ref.strip(), found), found)
    return found[0] if found else None


async def for_api(tx: Tx, ref: str) -> tuple[Case | None, Case | None]:
    """The case the API's `ref` names, preferring a full id; and the case the same text names
    as a handle when that is another one. Several cases with that id are refused."""
    handle = explicit_handle(ref)
    if handle is not None:
        return await tx.cases.by_handle(handle), None
    found = await tx.cases.matching(ref)
    by_id = [c for c in found if c.case_id == ref.strip()] or [
        c for c in found if c.case_id == ref.strip().upper()
    ]
    if len(by_id) > 1:
        raise AmbiguousReferenceError(_which(ref.strip(), found), by_id)
    if not by_id:
        return (found[0] if found else None), None
    shadowed = next((c for c in found if c.id != by_id[0].id), None)
    return by_id[0], shadowed


def _which(ref: str, cases: list[Case]) -> str:
    upper = ref.upper()
    named = [
        f"卡片编号 {c.handle}（{KIND_TEXT.get(c.kind, c.kind)}单 {c.case_id}）"
        if c.handle == upper
        else f"{KIND_TEXT.get(c.kind, c.kind)}单号 {c.case_id}（卡片编号 {c.handle}）"
        for c in cases
    ]
    others = "、".join(c.handle for c in cases if c.handle != upper)
    ways = [f"写 #{upper}（专指卡片编号 {upper}）"] if any(c.handle == upper for c in cases) else []
    if others:
        ways.append(f"用卡片编号 {others}")
    return f"「{ref}」同时指向 {'、'.join(named)}。请{'，或'.join(ways)}"

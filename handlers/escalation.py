"""Who an escalation @-mentions, once per case: people are called on when something is
actually escalated, and not again for the same thing on the same case.

`CaseData.mentioned` keeps, per kind of escalation (`deadline`, `complaint`, `escalate`, a
reminder's timer kind …), the staff ids it has @-mentioned; the message still goes to the
group every time, naming whoever is new to it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from handlers.case_data import CaseData
from handlers.context import Tx
from handlers.message import Mention
from storage.models import Case


def fresh(data: CaseData, kind: str, people: Iterable[Mention]) -> tuple[Mention, ...]:
    """Of `people`, those escalation `kind` has not @-mentioned on this case yet, now recorded
    in `data` as mentioned (the caller writes `data`)."""
    told = data.mentioned.get(kind, [])
    new = tuple(m for m in dict.fromkeys(people) if m.staff_id not in told)
    if new:
        data.mentioned = {**data.mentioned, kind: [*told, *(m.staff_id for m in new)]}
    return new


async def mention_once(
    tx: Tx, case: Case, kind: str, people: Iterable[Mention]
) -> tuple[Mention, ...]:
    """`fresh`, with the record written to the case at once."""
    data = CaseData.of(case)
    new = fresh(data, kind, people)
    if new:
        await tx.cases.touch(case, now=tx.now, data=data.dump())
    return new


def supervisors(tx: Tx) -> tuple[Mention, ...]:
    """The supervisors (the admins when there are none): whom a buyer's complaint is for."""
    staff = tx.svc.staff
    return staff.mentions(staff.with_role(["supervisor"]) or staff.with_role(["admin"]))


def complaint_word(text: str, words: Iterable[str]) -> str:
    """The first of `words` that `text` contains ("" when none): full-width forms read as their
    ASCII ones (１２３１５ is 12315), case ignored, spaces between the characters skipped."""
    said = _plain(text)
    return next((w for w in words if _plain(w) and _plain(w) in said), "")


def _plain(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())

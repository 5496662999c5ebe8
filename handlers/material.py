"""What a card's buttons act on, and the refusal of a click drawn before that last changed.

A case's *material version* is its version right after the last change of what a button
would do (a refund's amount or order amount); state changes need no such mark, the state
machine already refuses them. A click carries the version of the card it was drawn from,
and one older than the material version is refused: the person is shown the card as it is
now instead. A click whose card version cannot be told counts as version 0.
"""

from __future__ import annotations

from handlers.case_data import CaseData
from handlers.errors import StaleCardError
from storage.models import Case

STALE_TEXT = "卡片已更新，请看最新金额"


def version(case: Case) -> int:
    return CaseData.of(case).material_version


def ensure_fresh(case: Case, drawn: int | None) -> None:
    """Refuse a click on a card drawn (at version `drawn`) before the case's last material
    change; `None` is not a click (a typed command names the case, not a card)."""
    if drawn is not None and drawn < version(case):
        raise StaleCardError(STALE_TEXT, case_pk=case.id)

"""Cards by case kind: every flow registers how its case looks, as a pure builder."""

from __future__ import annotations

from collections.abc import Callable

from handlers import masking
from handlers.intercept.card import intercept_card
from handlers.logistics.card import anomaly_card
from handlers.message import Card
from handlers.payout.card import batch_card, payout_card
from handlers.refund.card import refund_card
from handlers.view import CardContext
from storage.models import Case

CardBuilder = Callable[[Case, CardContext], Card]

BUILDERS: dict[str, CardBuilder] = {
    "refund": refund_card,
    "payout": payout_card,
    "payout_batch": batch_card,
    "intercept": intercept_card,
    "anomaly": anomaly_card,
}


def build_card(case: Case, ctx: CardContext) -> Card:
    """The case's card for every channel, personal data masked (its own numbers shown)."""
    return masking.redact_card(BUILDERS[case.kind](case, ctx), masking.identifiers(case))

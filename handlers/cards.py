"""Cards by case kind: every flow registers how its case looks."""

from __future__ import annotations

from collections.abc import Callable

from handlers import masking
from handlers.context import Tx
from handlers.intercept.card import intercept_card
from handlers.logistics import anomaly_card
from handlers.message import Card
from handlers.payout import batch_card, payout_card
from handlers.refund.card import refund_card
from storage.models import Case

CardBuilder = Callable[[Case, Tx], Card]

BUILDERS: dict[str, CardBuilder] = {
    "refund": lambda case, tx: refund_card(case, tx.view),
    "payout": payout_card,
    "payout_batch": batch_card,
    "intercept": lambda case, tx: intercept_card(case, tx.view),
    "anomaly": anomaly_card,
}


def build_card(case: Case, tx: Tx) -> Card:
    """The case's card for every channel, personal data masked (its own numbers shown)."""
    return masking.redact_card(BUILDERS[case.kind](case, tx), masking.identifiers(case))

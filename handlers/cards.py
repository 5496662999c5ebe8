"""Cards by case kind: every flow registers how its case looks."""

from __future__ import annotations

from collections.abc import Callable

from handlers import masking
from handlers.context import Tx
from handlers.intercept.card import intercept_card
from handlers.logistics.card import anomaly_card
from handlers.message import Card
from handlers.payout.card import batch_card, payout_card
from handlers.refund.card import refund_card
from storage.models import Case

CardBuilder = Callable[[Case, Tx], Card]

BUILDERS: dict[str, CardBuilder] = {
    "refund": lambda case, tx: refund_card(case, tx.view),
    "payout": lambda case, tx: payout_card(case, tx.view),
    "payout_batch": lambda case, tx: batch_card(case, tx.view),
    "intercept": lambda case, tx: intercept_card(case, tx.view),
    "anomaly": lambda case, tx: anomaly_card(case, tx.view),
}


def build_card(case: Case, tx: Tx) -> Card:
    """The case's card for every channel, personal data masked (its own numbers shown)."""
    return masking.redact_card(BUILDERS[case.kind](case, tx), masking.identifiers(case))

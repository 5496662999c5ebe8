"""Which cases a group is shown. A group with `post = "needs_action"` is not shown a refund the
rules handled with nothing left for a person (auto-approved, on its way or refunded): the
digest counts it and 查 finds it, and its card is posted the moment a person is needed — the
refund failed, the buyer complains or waits for an answer, the warehouse could not stop the
parcel. Once posted, a card stays in the group and is updated like any other.
"""

from __future__ import annotations

from handlers.config import GroupSettings
from handlers.ports import MANUAL, SHIPPED
from handlers.refund.data import RefundData
from handlers.refund.machine import RefundState
from handlers.response import AUTOMATIC, RULE
from storage.enums import CaseKind
from storage.models import Case

S = RefundState
# Where an automatically approved refund may stand with nothing for a person to do.
UNATTENDED = frozenset({S.AUTO_APPROVED, S.SUBMITTED, S.REFUNDED, S.CLOSED_BY_PLATFORM})


def auto_handled(case: Case) -> bool:
    """A refund a rule (or a system) approved, with nothing for a person to do."""
    if case.kind != CaseKind.REFUND.value or case.state not in UNATTENDED:
        return False
    if not case.decided_by.startswith((RULE, *AUTOMATIC)):
        return False
    data = RefundData.of(case)
    stop = data.stop_shipment
    return not (
        data.complaint is not None
        or data.awaiting_reply is not None
        or data.commerce.verify
        or data.amount_refused is not None
        or (data.amount_change is not None and data.amount_change.outcome == "flagged")
        or stop == MANUAL
        or stop.startswith(("failed", f"{SHIPPED}:"))
    )


def shown(case: Case, group: GroupSettings | None) -> bool:
    """Whether `group` should be shown the case's card now (a card already posted is always
    kept up to date, whatever this says)."""
    return group is None or group.post == "all" or not auto_handled(case)

"""One state step for every kind of case: compare-and-set, audit, the card, the first response.

Each flow decides which trigger applies and what arriving in a state means; the bookkeeping
every move shares lives here, once.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Any, TypeVar

from handlers.case_data import CaseData
from handlers.context import Tx
from handlers.response import is_response
from handlers.states import Machine
from storage.models import Case

St = TypeVar("St", bound=StrEnum)
Tr = TypeVar("Tr", bound=StrEnum)


async def step(
    tx: Tx,
    case: Case,
    machine: Machine[St, Tr],
    trigger: Tr,
    *,
    actor: str,
    closed: Collection[St],
    footer: str | None = None,
    channel: str = "",
    data: CaseData | None = None,
    awaited: bool = True,
    **changes: Any,
) -> St:
    """Move `case` by `trigger` with compare-and-set, write the audit line and redraw the card.

    `closed`: the states in which the case is done (entering one stamps `closed_at`, leaving
    them clears it). `footer`: who moved the case last, for a refusal that says so (without
    it the refusal names only the state). `data`, typed, is written as `case.data`; `changes`
    are further columns to write. `awaited`: someone waits on the case (a buyer, the team), so a person
    deciding it first is its first response (`is_response`); a payout batch is bookkeeping
    nobody waits on."""
    before = case.state
    if footer is None:
        after = machine.advance(before, trigger)
    else:
        after = machine.ensure(case.handle, before, trigger, footer)
    values: dict[str, Any] = {"last_actor": actor, "last_action": trigger.value, **changes}
    if data is not None:
        values["data"] = data.dump()
    if after in closed:
        if case.closed_at is None:
            values["closed_at"] = tx.now
    elif case.closed_at is not None:
        values["closed_at"] = None
    if awaited and case.first_response_at is None and is_response(actor, trigger.value):
        values.setdefault("first_response_at", tx.now)
    await tx.cases.transition(case, after.value, now=tx.now, **values)
    await tx.audit(case, actor, trigger.value, from_state=before, channel=channel)
    await tx.sync_card(case)
    return after

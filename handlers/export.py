"""Reconciliation exports: the payouts or refunds of a period as CSV rows, accounts masked.

A period is whole local days, `since` through `until`; rows are chosen by when they were
requested, or by when the money moved (`by="paid"`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, TextIO

from sqlalchemy import select

from handlers.context import Tx
from handlers.money import fen_to_yuan
from handlers.payout import mask_account, mask_name
from storage.enums import CaseKind
from storage.models import Case
from storage.repositories.payouts import PayoutRepository

By = Literal["requested", "paid"]

PAYOUT_COLUMNS = (
    "payout_id",
    "handle",
    "order_id",
    "kind",
    "amount",
    "payee_name",
    "payee_account",
    "state",
    "requested_by",
    "requested_at",
    "approved_by",
    "approved_at",
    "paid_by",
    "paid_at",
    "reference",
    "provider",
    "provider_status",
    "batch",
    "rejected_by",
    "rejected_at",
    "shop",
    "platform",
)
REFUND_COLUMNS = (
    "refund_id",
    "handle",
    "order_id",
    "shop",
    "platform",
    "kind",
    "amount",
    "order_amount",
    "state",
    "path",
    "reason",
    "rule",
    "decided_by",
    "decision",
    "decided_at",
    "requested_at",
    "closed_at",
    "commerce_status",
)


@dataclass(frozen=True)
class Export:
    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    fen: int

    @property
    def count(self) -> int:
        return len(self.rows)


def period(since: date, until: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[since 00:00, the day after until 00:00) in local time."""
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz)
    return start, end


async def payouts(tx: Tx, since: datetime, until: datetime, by: By = "requested") -> Export:
    pairs = await PayoutRepository(tx.session).between(by, since, until)
    handles = await _handles(tx, {p.batch_pk for p, _ in pairs if p.batch_pk is not None})
    rows = [
        {
            "payout_id": p.payout_id,
            "handle": c.handle,
            "order_id": c.order_id,
            "kind": p.kind,
            "amount": str(fen_to_yuan(c.amount_fen)),
            "payee_name": mask_name(p.payee_name),
            "payee_account": mask_account(p.payee_account),
            "state": c.state,
            "requested_by": p.requested_by,
            "requested_at": _at(tx, p.requested_at),
            "approved_by": p.approved_by,
            "approved_at": _at(tx, p.approved_at),
            "paid_by": p.paid_by,
            "paid_at": _at(tx, p.paid_at),
            "reference": p.reference,
            "provider": p.provider,
            "provider_status": p.provider_status,
            "batch": handles.get(p.batch_pk or 0, ""),
            "rejected_by": p.rejected_by,
            "rejected_at": _at(tx, p.rejected_at),
            "shop": c.shop,
            "platform": c.platform,
        }
        for p, c in pairs
    ]
    return Export(PAYOUT_COLUMNS, rows, sum(c.amount_fen for _, c in pairs))


async def refunds(tx: Tx, since: datetime, until: datetime, by: By = "requested") -> Export:
    stmt = select(Case).where(Case.kind == CaseKind.REFUND.value)
    if by == "paid":
        stmt = stmt.where(Case.state == "refunded", Case.closed_at >= since, Case.closed_at < until)
        stmt = stmt.order_by(Case.closed_at, Case.id)
    else:
        stmt = stmt.where(Case.created_at >= since, Case.created_at < until)
        stmt = stmt.order_by(Case.created_at, Case.id)
    cases = list((await tx.session.scalars(stmt)).all())
    rows = []
    for c in cases:
        refund = c.data.get("refund", {})
        decision = c.data.get("decision", {})
        order_amount = c.data.get("order_amount_fen")
        rows.append(
            {
                "refund_id": c.case_id,
                "handle": c.handle,
                "order_id": c.order_id,
                "shop": c.shop,
                "platform": c.platform,
                "kind": str(refund.get("kind", "")),
                "amount": str(fen_to_yuan(c.amount_fen)),
                "order_amount": (
                    str(fen_to_yuan(order_amount)) if isinstance(order_amount, int) else ""
                ),
                "state": c.state,
                "path": str(c.path or ""),
                "reason": c.reason,
                "rule": str(c.data.get("rule", "")),
                "decided_by": str(decision.get("by", "")),
                "decision": str(decision.get("action", "")),
                "decided_at": (
                    _at(tx, datetime.fromisoformat(decision["at"])) if decision.get("at") else ""
                ),
                "requested_at": _at(tx, c.created_at),
                "closed_at": _at(tx, c.closed_at),
                "commerce_status": str(c.data.get("commerce", {}).get("status", "")),
            }
        )
    return Export(REFUND_COLUMNS, rows, sum(c.amount_fen for c in cases))


def write_csv(export: Export, out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=export.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(export.rows)


async def _handles(tx: Tx, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = await tx.session.execute(select(Case.id, Case.handle).where(Case.id.in_(pks)))
    return {int(pk): str(handle) for pk, handle in rows.all()}


def _at(tx: Tx, at: datetime | None) -> str:
    return "" if at is None else f"{tx.local(at):%Y-%m-%d %H:%M:%S}"

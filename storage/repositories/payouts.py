"""Payout rows: the full account, who moved the money when, transfer bookkeeping, and sums."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Case, Payout

Moment = Literal["requested", "approved", "paid"]


@dataclass(frozen=True)
class Tally:
    count: int = 0
    fen: int = 0


class PayoutRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, case_pk: int, now: datetime, **fields: Any) -> Payout:
        row = Payout(case_pk=case_pk, updated_at=now, **fields)
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, case_pk: int) -> Payout | None:
        return await self.session.get(Payout, case_pk, populate_existing=True)

    async def update(self, case_pk: int, *, now: datetime, **values: Any) -> None:
        await self.session.execute(
            update(Payout)
            .where(Payout.case_pk == case_pk)
            .values(updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )

    async def lock_case(self, case_pk: int) -> Case | None:
        """The case row, re-read and locked until the transaction ends (PostgreSQL)."""
        return await self.session.scalar(
            select(Case)
            .where(Case.id == case_pk)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def mark_sent(self, case_pk: int, out_biz_no: str, *, now: datetime) -> bool:
        """Count one more transfer request for `out_biz_no`, before it leaves; False if stale."""
        result = await self.session.execute(
            update(Payout)
            .where(Payout.case_pk == case_pk, Payout.out_biz_no == out_biz_no)
            .values(sends=Payout.sends + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def in_states(self, states: list[str], *, limit: int) -> list[Case]:
        """Payout cases in `states`, oldest first."""
        return list(
            (
                await self.session.scalars(
                    select(Case)
                    .where(Case.kind == "payout", Case.state.in_(states))
                    .order_by(Case.id)
                    .limit(limit)
                )
            ).all()
        )

    async def unbatched(
        self, state: str, *, groups: Collection[str] | None, limit: int
    ) -> list[Case]:
        """Payout cases in `state` that no batch holds (of `groups` only, when given), oldest first."""
        stmt = (
            select(Case)
            .join(Payout, Payout.case_pk == Case.id)
            .where(Case.kind == "payout", Case.state == state, Payout.batch_pk.is_(None))
        )
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        return list((await self.session.scalars(stmt.order_by(Case.id).limit(limit))).all())

    async def requested_up_to(
        self, max_fen: int, *, groups: Collection[str] | None, limit: int
    ) -> list[Case]:
        """Payout cases waiting for approval with an amount of at most `max_fen` (of `groups`
        only, when given), oldest first."""
        stmt = select(Case).where(
            Case.kind == "payout", Case.state == "requested", Case.amount_fen <= max_fen
        )
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        return list((await self.session.scalars(stmt.order_by(Case.id).limit(limit))).all())

    async def tally(
        self, moment: Moment, since: datetime, until: datetime, *, group_id: str | None = None
    ) -> Tally:
        """How many payouts were requested / approved / paid in [since, until), and their sum."""
        column = _moment(moment)
        stmt = (
            select(func.count(), func.coalesce(func.sum(Case.amount_fen), 0))
            .select_from(Payout)
            .join(Case, Case.id == Payout.case_pk)
            .where(column >= since, column < until)
        )
        if group_id is not None:
            stmt = stmt.where(Case.group_id == group_id)
        count, fen = (await self.session.execute(stmt)).one()
        return Tally(int(count), int(fen))

    async def between(
        self, moment: Moment, since: datetime, until: datetime
    ) -> list[tuple[Payout, Case]]:
        column = _moment(moment)
        rows = await self.session.execute(
            select(Payout, Case)
            .join(Case, Case.id == Payout.case_pk)
            .where(column >= since, column < until)
            .order_by(column, Payout.case_pk)
        )
        return [(p, c) for p, c in rows.all()]

    async def awaiting_payment(
        self, provider: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[Payout, Case]]:
        """Approved payouts of `provider` that nobody has paid yet, oldest approval first;
        `since`/`until` bound the approval time."""
        stmt = (
            select(Payout, Case)
            .join(Case, Case.id == Payout.case_pk)
            .where(Case.state == "approved", Payout.provider == provider)
        )
        if since is not None:
            stmt = stmt.where(Payout.approved_at >= since)
        if until is not None:
            stmt = stmt.where(Payout.approved_at < until)
        rows = await self.session.execute(stmt.order_by(Payout.approved_at, Payout.case_pk))
        return [(p, c) for p, c in rows.all()]


def _moment(moment: Moment) -> InstrumentedAttribute[Any]:
    return {
        "requested": Payout.requested_at,
        "approved": Payout.approved_at,
        "paid": Payout.paid_at,
    }[moment]

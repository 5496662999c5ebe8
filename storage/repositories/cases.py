"""Cases: creation with a short handle, lookup by handle or id, compare-and-set transitions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import CaseKind
from storage.models import Case, Counter
from storage.repositories.queue import insert_once


class StaleCaseError(Exception):
    """The case changed between load and write; reload and decide again."""


class CaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_handle(self, kind: CaseKind) -> str:
        return await self.next_number(kind.handle_prefix)

    async def next_number(self, prefix: str) -> str:
        """The next short reference with `prefix` (R12, P7, F3 …), unique across instances."""
        await insert_once(self.session, Counter, {"name": prefix, "value": 0})
        value = await self.session.scalar(
            update(Counter)
            .where(Counter.name == prefix)
            .values(value=Counter.value + 1)
            .returning(Counter.value)
        )
        return f"{prefix}{value}"

    async def create(
        self, *, kind: CaseKind, case_id: str, state: str, now: datetime, **fields: Any
    ) -> Case:
        case = Case(
            kind=kind.value,
            case_id=case_id,
            handle=await self.next_handle(kind),
            state=state,
            version=1,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.session.add(case)
        await self.session.flush()
        return case

    async def get(self, pk: int) -> Case | None:
        return await self.session.get(Case, pk, populate_existing=True)

    async def by_case_id(self, kind: CaseKind, case_id: str) -> Case | None:
        return await self.session.scalar(
            select(Case).where(Case.kind == kind.value, Case.case_id == case_id)
        )

    async def by_handle(self, handle: str) -> Case | None:
        """The case with this short handle (R12, `r12` too)."""
        return await self.session.scalar(select(Case).where(Case.handle == handle.strip().upper()))

    async def matching(self, ref: str) -> list[Case]:
        """Every case `ref` could name: the one with that handle, and those whose full id is
        `ref` as typed or as the handle reads it (`r1` may mean the id "R1" as well)."""
        ref = ref.strip()
        by_id = Case.kind.in_([k.value for k in CaseKind]) & Case.case_id.in_({ref, ref.upper()})
        rows = await self.session.scalars(
            select(Case).where(or_(Case.handle == ref.upper(), by_id)).order_by(Case.id)
        )
        return list(rows.all())

    async def find(self, ref: str) -> Case | None:
        """The one case `ref` names (`#R12`: the handle only); None when none or several do."""
        ref = ref.strip()
        if ref.startswith(("#", "＃")):
            return await self.by_handle(ref[1:])
        found = await self.matching(ref)
        return found[0] if len(found) == 1 else None

    async def latest_for_order(self, kind: CaseKind, order_id: str) -> Case | None:
        """The newest case of `kind` on an order (a parcel's refund, for example)."""
        if not order_id:
            return None
        return await self.session.scalar(
            select(Case)
            .where(Case.kind == kind.value, Case.order_id == order_id)
            .order_by(Case.id.desc())
            .limit(1)
        )

    async def transition(
        self, case: Case, new_state: str, *, now: datetime, **changes: Any
    ) -> None:
        """Move `case` from its loaded state/version to `new_state`, or raise StaleCaseError."""
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case.id, Case.state == case.state, Case.version == case.version)
            .values(state=new_state, version=case.version + 1, updated_at=now, **changes)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleCaseError(case.handle)
        await self.session.refresh(case)

    async def lock(self, case: Case) -> None:
        """Reload `case` and hold its row to the end of the transaction (PostgreSQL; SQLite
        has one writer anyway): for appends that should wait their turn, not fail stale."""
        await self.session.refresh(case, with_for_update=True)

    async def touch(self, case: Case, *, now: datetime, **changes: Any) -> None:
        """Change fields without a state change; still compare-and-set on the version."""
        await self.transition(case, case.state, now=now, **changes)

    async def open_cases(
        self,
        *,
        states: Sequence[str],
        assignee: str | None = None,
        groups: Collection[str] | None = None,
        limit: int = 50,
    ) -> list[Case]:
        """Cases in `states` (of `groups` only, when given), the nearest deadline first."""
        stmt = select(Case).where(Case.state.in_(states))
        if assignee is not None:
            stmt = stmt.where(Case.assignee == assignee)
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        stmt = stmt.order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

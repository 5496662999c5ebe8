"""Cases: creation with a short handle, lookup by handle or id, compare-and-set transitions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import CaseKind
from storage.models import Case, CaseKey, Counter, Parcel
from storage.repositories.queue import insert_once

# What a case is known by, read from its `data`: (kind, normalised value) pairs.
KeysOf = Callable[[Mapping[str, Any]], frozenset[tuple[str, str]]]


class StaleCaseError(Exception):
    """The case changed between load and write; reload and decide again."""


class CaseRepository:
    """`keys_of`, when given, keeps `case_keys` in step with every `data` written."""

    def __init__(self, session: AsyncSession, keys_of: KeysOf | None = None) -> None:
        self.session = session
        self.keys_of = keys_of

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
        if self.keys_of is not None and case.data:
            await self._rekey(case.id, frozenset(), self.keys_of(case.data))
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
        before = case.data
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case.id, Case.state == case.state, Case.version == case.version)
            .values(state=new_state, version=case.version + 1, updated_at=now, **changes)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleCaseError(case.handle)
        if self.keys_of is not None and "data" in changes:
            await self._rekey(case.id, self.keys_of(before or {}), self.keys_of(changes["data"]))
        await self.session.refresh(case)

    async def _rekey(
        self, case_pk: int, old: frozenset[tuple[str, str]], new: frozenset[tuple[str, str]]
    ) -> None:
        if gone := old - new:
            await self.session.execute(
                delete(CaseKey).where(CaseKey.case_pk == case_pk, _any_key(gone))
            )
        for kind, value in sorted(new - old):
            await insert_once(
                self.session, CaseKey, {"case_pk": case_pk, "kind": kind, "value": value}
            )

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
        kinds: Collection[str] | None = None,
        holding: str = "",
        limit: int = 50,
    ) -> list[Case]:
        """Cases in `states` (of `kinds` and `groups` only, and whose data has the top-level
        key `holding`, when given), the nearest deadline first."""
        stmt = select(Case).where(Case.state.in_(states))
        if kinds is not None:
            # `|| ''` keeps SQLite off the (kind, case_id) index, which would read every case
            # of the kind; (group_id, state) reads only those in the states asked for.
            stmt = stmt.where((Case.kind + "").in_(sorted(kinds)))
        if holding:
            stmt = stmt.where(Case.data[holding].as_string().is_not(None))
        if assignee is not None:
            stmt = stmt.where(Case.assignee == assignee)
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        stmt = stmt.order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def for_order(
        self, order_id: str, *, groups: Collection[str] | None = None, limit: int = 100
    ) -> list[Case]:
        """Every case on an order (of `groups` only, when given), oldest first."""
        stmt = select(Case).where(Case.order_id == order_id)
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        return list((await self.session.scalars(stmt.order_by(Case.id).limit(limit))).all())

    async def known_by(
        self,
        keys: Collection[tuple[str, str]],
        *,
        order_id: str = "",
        tracking_nos: Collection[str] = (),
        groups: Collection[str] | None = None,
        limit: int = 50,
    ) -> list[Case]:
        """Cases with one of `keys` (kind, normalised value), on the order `order_id`, or on an
        order whose parcel has one of `tracking_nos` (as stored); of `groups` only, when given,
        newest first."""
        # Each way to match is its own indexed lookup; their union names the cases.
        found: list[Select[int]] = []
        if keys:
            found.append(select(CaseKey.case_pk).where(_any_key(keys)))
        if order_id:
            found.append(select(Case.id).where(Case.order_id == order_id))
        if tracking_nos:
            orders = select(Parcel.order_id).where(
                Parcel.tracking_no.in_(sorted(tracking_nos)), Parcel.order_id != ""
            )
            found.append(select(Case.id).where(Case.order_id.in_(orders)))
        if not found:
            return []
        stmt = select(Case).where(Case.id.in_(union(*found)))
        if groups is not None:
            stmt = stmt.where(Case.group_id.in_(sorted(groups)))
        return list((await self.session.scalars(stmt.order_by(Case.id.desc()).limit(limit))).all())


def _any_key(keys: Collection[tuple[str, str]]) -> ColumnElement[bool]:
    return or_(
        *(and_(CaseKey.kind == kind, CaseKey.value == value) for kind, value in sorted(keys))
    )

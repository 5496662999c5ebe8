"""The audit log: who did what to which case, from which channel, and the state it moved."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Case


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        case_pk: int | None,
        at: datetime,
        actor: str,
        action: str,
        from_state: str = "",
        to_state: str = "",
        channel: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(
                case_pk=case_pk,
                at=at,
                actor=actor,
                action=action,
                from_state=from_state,
                to_state=to_state,
                channel=channel,
                detail=detail or {},
            )
        )

    async def history(self, case_pk: int) -> list[AuditEntry]:
        return list(
            (
                await self.session.scalars(
                    select(AuditEntry).where(AuditEntry.case_pk == case_pk).order_by(AuditEntry.id)
                )
            ).all()
        )

    async def latest(self, case_pk: int, limit: int = 20) -> list[AuditEntry]:
        """The case's last `limit` entries, newest first."""
        return list(
            (
                await self.session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.case_pk == case_pk)
                    .order_by(AuditEntry.id.desc())
                    .limit(limit)
                )
            ).all()
        )

    async def last_by(
        self,
        actor: str,
        actions: Collection[str],
        *,
        since: datetime,
        groups: Collection[str] | None = None,
    ) -> AuditEntry | None:
        """The newest entry by `actor` doing one of `actions` at or after `since`, on a case
        of `groups` (every group when None)."""
        stmt = select(AuditEntry).where(
            AuditEntry.action.in_(sorted(actions)),
            AuditEntry.at >= since,
            AuditEntry.actor == actor,
        )
        if groups is not None:
            stmt = stmt.join(Case, Case.id == AuditEntry.case_pk).where(
                Case.group_id.in_(sorted(groups))
            )
        return await self.session.scalar(stmt.order_by(AuditEntry.id.desc()).limit(1))

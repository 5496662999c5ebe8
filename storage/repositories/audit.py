"""The audit log: who did what to which case, from which channel, and the state it moved."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


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

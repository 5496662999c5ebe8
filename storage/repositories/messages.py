"""Card placements on platforms, and the sandbox channel's own group chat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CardMessage, SandboxMessage


class CardMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, case_pk: int, group_id: str) -> CardMessage | None:
        return await self.session.scalar(
            select(CardMessage).where(
                CardMessage.case_pk == case_pk, CardMessage.group_id == group_id
            )
        )

    async def by_ref(self, channel: str, ref: str) -> CardMessage | None:
        return await self.session.scalar(
            select(CardMessage).where(CardMessage.channel == channel, CardMessage.ref == ref)
        )

    async def record(
        self,
        *,
        case_pk: int,
        group_id: str,
        channel: str,
        ref: str,
        version: int,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> CardMessage:
        card = await self.get(case_pk, group_id)
        if card is None:
            card = CardMessage(
                case_pk=case_pk,
                group_id=group_id,
                channel=channel,
                ref=ref,
                version=version,
                extra=extra or {},
                created_at=now,
                updated_at=now,
            )
            self.session.add(card)
        else:
            card.ref = ref or card.ref
            card.version = version
            card.updated_at = now
            if extra is not None:
                card.extra = {**card.extra, **extra}
        await self.session.flush()
        return card


class SandboxMessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        group_id: str,
        kind: str,
        now: datetime,
        author: str = "",
        text: str = "",
        case_pk: int | None = None,
        card: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> SandboxMessage:
        message = SandboxMessage(
            group_id=group_id,
            kind=kind,
            author=author,
            text=text,
            case_pk=case_pk,
            card=card,
            meta=meta,
            created_at=now,
            updated_at=now,
        )
        self.session.add(message)
        await self.session.flush()
        return message

    async def get(self, message_id: int) -> SandboxMessage | None:
        return await self.session.get(SandboxMessage, message_id, populate_existing=True)

    async def card_for(self, group_id: str, case_pk: int) -> SandboxMessage | None:
        return await self.session.scalar(
            select(SandboxMessage).where(
                SandboxMessage.group_id == group_id,
                SandboxMessage.case_pk == case_pk,
                SandboxMessage.kind == "card",
            )
        )

    async def list(
        self, group_id: str, *, after: int | None = None, limit: int = 500
    ) -> list[SandboxMessage]:
        """Oldest first: the first `limit` messages after id `after` (paging forward), or,
        without `after`, the newest `limit` (what a chat window shows)."""
        stmt = select(SandboxMessage).where(SandboxMessage.group_id == group_id)
        if after is not None:
            stmt = stmt.where(SandboxMessage.id > after).order_by(SandboxMessage.id).limit(limit)
            return list((await self.session.scalars(stmt)).all())
        newest = stmt.order_by(SandboxMessage.id.desc()).limit(limit)
        return sorted((await self.session.scalars(newest)).all(), key=lambda m: m.id)

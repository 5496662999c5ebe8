"""Named connector state (a pull cursor, a shop's tokens): read, and written whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ConnectorState
from storage.repositories.queue import insert_once


class ConnectorStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> dict[str, Any] | None:
        row = await self.session.get(ConnectorState, name, populate_existing=True)
        return dict(row.data) if row is not None else None

    async def put(self, name: str, data: dict[str, Any], *, now: datetime) -> None:
        if await insert_once(
            self.session, ConnectorState, {"name": name, "data": data, "updated_at": now}
        ):
            return
        await self.session.execute(
            update(ConnectorState)
            .where(ConnectorState.name == name)
            .values(data=data, updated_at=now)
        )

    async def delete(self, name: str) -> None:
        await self.session.execute(delete(ConnectorState).where(ConnectorState.name == name))

"""Group commit for ingest: concurrent requests share one transaction.

The first request that finds no write in progress becomes the writer: it stores every
event queued so far in one transaction, resolves each waiter with its own result, and
repeats while more arrived meanwhile. Nobody answers 202 before their event is committed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from handlers.context import Services
from handlers.schema import Envelope

Item = tuple[Envelope, dict[str, Any]]


@dataclass
class GroupCommit:
    svc: Services
    _pending: list[tuple[list[Item], asyncio.Future[list[bool]]]] = field(default_factory=list)
    _writing: bool = False

    async def store(self, items: list[Item]) -> list[bool]:
        """Store events; for each, True when new, False when its id was stored before."""
        done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, done))
        if not self._writing:
            self._writing = True
            try:
                while self._pending:
                    batch, self._pending = self._pending, []
                    await self._write(batch)
            finally:
                self._writing = False
        return await done

    async def _write(self, batch: list[tuple[list[Item], asyncio.Future[list[bool]]]]) -> None:
        try:
            rows: dict[str, dict[str, Any]] = {}
            for items, _ in batch:
                for envelope, raw in items:
                    rows.setdefault(
                        envelope.id,
                        {
                            "id": envelope.id,
                            "type": envelope.type,
                            "shop": envelope.shop,
                            "platform": envelope.platform,
                            "occurred_at": envelope.occurred_at,
                            "body": raw,
                        },
                    )
            async with self.svc.tx(urgent=True) as tx:
                new = await tx.events.add_many(list(rows.values()), now=tx.now)
            # Within the batch only the first occurrence of an id is new.
            results: list[list[bool]] = []
            for items, _ in batch:
                flags = []
                for envelope, _raw in items:
                    flags.append(envelope.id in new)
                    new.discard(envelope.id)
                results.append(flags)
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, done), result in zip(batch, results, strict=True):
            done.set_result(result)

"""Group commit for ingest: concurrent requests share one transaction.

The first request that finds no write in progress becomes the writer: it stores every
event queued so far in one transaction, resolves each waiter with its own result, and
repeats while more arrived meanwhile. Nobody answers 202 before their event is committed.

One request's bad event never fails another's: when the shared transaction fails, each
request is written again on its own, so only the one that cannot be stored fails —
`UnstorableError` (its data; the sender should not send it again as is) or
`StoreUnavailableError` (the database; the sender should retry).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, StatementError

from handlers.context import Services
from handlers.schema import Envelope

log = logging.getLogger(__name__)

Item = tuple[Envelope, dict[str, Any]]
Waiter = tuple[list[Item], asyncio.Future[list[bool]]]
# Raised while turning a value into a statement parameter: the value's fault, not the server's.
BIND_ERRORS = (ValueError, TypeError, OverflowError, UnicodeError, RecursionError)


def event_row(envelope: Envelope, raw: dict[str, Any]) -> dict[str, Any]:
    """The `events` row of an accepted envelope, `raw` being its JSON as received."""
    return {
        "id": envelope.id,
        "type": envelope.type,
        "shop": envelope.shop,
        "platform": envelope.platform,
        "occurred_at": envelope.occurred_at,
        "body": raw,
    }


class UnstorableError(Exception):
    """The database refused these events' data (a 400: sending them again will not help)."""


class StoreUnavailableError(Exception):
    """The events could not be stored for now (a 503: send them again later)."""


def data_problem(exc: BaseException) -> bool:
    """True when the database (or the driver binding a value) refused the data itself."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    return isinstance(exc, StatementError) and isinstance(exc.orig, BIND_ERRORS)


@dataclass
class GroupCommit:
    svc: Services
    _pending: list[Waiter] = field(default_factory=list)
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

    async def _write(self, batch: list[Waiter]) -> None:
        try:
            try:
                results = await self._commit(batch)
            except Exception as exc:
                if len(batch) == 1:
                    self._fail(batch[0], exc)
                    return
                log.warning(
                    "group commit of %d requests failed (%s); storing each alone",
                    len(batch),
                    type(exc).__name__,
                )
                for waiter in batch:
                    try:
                        (result,) = await self._commit([waiter])
                    except Exception as alone:
                        self._fail(waiter, alone)
                    else:
                        waiter[1].set_result(result)
                return
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            raise

    async def _commit(self, batch: list[Waiter]) -> list[list[bool]]:
        rows: dict[str, dict[str, Any]] = {}
        for items, _ in batch:
            for envelope, raw in items:
                rows.setdefault(envelope.id, event_row(envelope, raw))
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
        return results

    def _fail(self, waiter: Waiter, exc: Exception) -> None:
        items, done = waiter
        ids = ", ".join(envelope.id for envelope, _ in items[:3])
        if data_problem(exc):
            log.warning("events %s refused by the database: %s", ids, type(exc).__name__)
            done.set_exception(UnstorableError(type(exc).__name__))
        else:
            log.error("events %s could not be stored: %s", ids, type(exc).__name__)
            done.set_exception(StoreUnavailableError(type(exc).__name__))

"""Engine and transactions: `async with db.begin() as s:` is the one way to touch the database.

SQLite runs in WAL mode and takes its write lock at BEGIN (`BEGIN IMMEDIATE`) so two
transactions never deadlock upgrading a read lock; inside one process an asyncio lock
queues them instead of SQLite's busy-wait. PostgreSQL uses READ COMMITTED and row locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry


def _sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's own BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=10000",
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


class WriteLock:
    """SQLite's single writer, queued in-process; urgent holders (ingest) go first."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool) -> AsyncIterator[None]:
        if self._held or self._urgent or (self._normal and not urgent):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._normal).append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release()
                else:
                    (self._urgent if urgent else self._normal).remove(waiter)
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes to the waiter
                    return
        self._held = False


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            options |= {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(
                self.engine.sync_engine,
                "begin",
                lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"),
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = WriteLock() if self.is_sqlite else None
        self.last_urgent = 0.0
        self.notify: Callable[[str], None] = lambda _topic: None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def begin(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """One transaction: commits on normal exit, rolls back on an exception.

        `urgent` transactions (accepting inbound events) queue ahead of background work.
        Topics that repositories marked with `queue.wake` are notified after the commit.
        """
        if urgent:
            self.last_urgent = time.monotonic()
        lock = self._write_lock.hold(urgent=urgent) if self._write_lock else nullcontext()
        async with lock, self.sessions.begin() as session:
            yield session
        for topic in session.info.pop("wake", ()):
            self.notify(topic)

    def busy(self, within_s: float = 0.05) -> bool:
        """True while inbound traffic has been arriving (background work should defer to it)."""
        return time.monotonic() - self.last_urgent < within_s

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

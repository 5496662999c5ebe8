"""Engine and transactions: `async with db.begin() as s:` is the one way to touch the database.

SQLite runs in WAL mode and takes its write lock at BEGIN (`BEGIN IMMEDIATE`) so two
transactions never deadlock upgrading a read lock; inside one process an asyncio lock
queues them instead of SQLite's busy-wait. SQLite statements run on the event loop's thread
(they take microseconds; a thread hand-off per statement would cost far more), with a turn
for other tasks between transactions. PostgreSQL uses READ COMMITTED and row locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import aiosqlite
from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
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
        "PRAGMA busy_timeout=0",  # a busy file is waited for by `Database._open`, asleep
        "PRAGMA foreign_keys=ON",
    ):
        cursor.execute(pragma)
    cursor.close()


SQLITE_BUSY_S = 10.0  # how long a transaction waits for another process's write lock


class _RunNow:
    """aiosqlite's work queue, done on the spot instead of by its thread."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineSqlite(aiosqlite.Connection):
    """aiosqlite's interface, run on the event loop's own thread.

    A statement on a local SQLite file takes microseconds; handing each one to a worker
    thread and back costs a hundred times that on a virtual machine. All SQLite work is
    serialised by `WriteLock` anyway, so nothing runs alongside it that the thread would
    have let through."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start


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
                    # Not ours; `_release` may already have dropped it from the queue.
                    with contextlib.suppress(ValueError):
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
        # SQL parameters carry payee accounts and buyers' words: never in an error or a log.
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            options["async_creator"] = self._connect_sqlite
        else:
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

    async def _connect_sqlite(self) -> aiosqlite.Connection:
        args, kwargs = self.engine.dialect.create_connect_args(make_url(self.url))
        path, options = str(args[0]), dict(kwargs)
        return await InlineSqlite(lambda: sqlite3.connect(path, **options))

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
        if self.is_sqlite:
            # SQLite runs on this thread and never waits inside a transaction: let whatever
            # else is ready (an HTTP request, a websocket ping) run between transactions.
            await asyncio.sleep(0)
        lock = self._write_lock.hold(urgent=urgent) if self._write_lock else nullcontext()
        async with lock:
            session = await self._open()
            async with session:
                try:
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
        for topic in session.info.pop("wake", ()):
            self.notify(topic)

    async def _open(self) -> AsyncSession:
        """A session in a new transaction; on SQLite with the file's write lock already held.

        Another process (or another `Database` on the same file) may hold that lock. Its
        wait happens here, asleep, rather than in SQLite's busy handler, which would stop
        this thread and everything on its event loop."""
        delay, waited = 0.002, 0.0
        while True:
            session = self.sessions()
            if not self.is_sqlite:
                return session
            try:
                await session.connection()  # BEGIN IMMEDIATE
            except OperationalError as exc:
                await session.close()
                if "locked" not in str(exc.orig) or waited >= SQLITE_BUSY_S:
                    raise
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.1)
                continue
            return session

    def busy(self, within_s: float = 0.05) -> bool:
        """True while inbound traffic has been arriving (background work should defer to it)."""
        return time.monotonic() - self.last_urgent < within_s

    async def ping(self) -> None:
        async with self.begin() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

"""The test databases: where PostgreSQL and Redis are, and running database work off the loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.base import Base

# One database per test run (dropped at the end), so runs side by side never meet.
PG_URL = os.environ.get(
    "REFUNDOPS_TEST_PG_URL",
    f"postgresql+asyncpg://postgres@127.0.0.1:5432/refundops_test_{os.getpid()}",
)
REDIS_URL = os.environ.get("REFUNDOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
T = TypeVar("T")


def admin_url() -> str:
    return PG_URL.rsplit("/", 1)[0] + "/postgres"


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on its own loop, also from inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


async def truncate(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()

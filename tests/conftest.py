"""Shared fixtures: the databases, the clock, the app, and the fakes every module may use.
The helpers they are built from live in `tests.support`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import create_app
from bot.settings import Settings
from handlers.clock import FakeClock
from integrations.carrier.fake import PATH as CARRIER_PATH
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from integrations.payout.fake import FakeAlipay
from storage import migrate
from storage.db import Database
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.db import IN_CI, PG_URL, REDIS_URL, admin_url, in_thread, truncate
from tests.support.fakes import Served, serve
from tests.support.payout import make_alipay

# -- databases ----------------------------------------------------------------------------


@pytest.fixture
async def redis_url() -> str:
    """The test Redis, emptied; skips without it (fails under CI=true)."""
    try:
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
    except (OSError, aioredis.ConnectionError) as exc:
        if IN_CI:
            pytest.fail(f"CI=true needs Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated; skips (fails in CI) without one."""

    async def prepare() -> str | None:
        name = PG_URL.rsplit("/", 1)[1]
        try:
            engine = create_async_engine(admin_url(), isolation_level="AUTOCOMMIT")
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            await engine.dispose()
        except (OSError, ConnectionError) as exc:
            return f"PostgreSQL at {admin_url()} is not reachable: {exc}"
        db = Database(PG_URL)
        await migrate.upgrade(db)
        await db.dispose()
        return None

    async def drop() -> None:
        engine = create_async_engine(admin_url(), isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(
                text(f'DROP DATABASE IF EXISTS "{PG_URL.rsplit("/", 1)[1]}" WITH (FORCE)')
            )
        await engine.dispose()

    problem = in_thread(prepare)
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true needs PostgreSQL: {problem}")
        pytest.skip(problem)
    yield PG_URL
    in_thread(drop)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_url")
    in_thread(lambda: truncate(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    if database.is_sqlite:
        await migrate.upgrade(database)
    yield database
    await database.dispose()


# -- the app ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_commerce(clock: FakeClock) -> AsyncIterator[Served[FakeCommerce]]:
    fake = FakeCommerce(now=lambda: clock.now().timestamp())
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/refundops")


@pytest.fixture
async def fake_carrier(clock: FakeClock) -> AsyncIterator[Served[FakeCarrier]]:
    fake = FakeCarrier(now=lambda: clock.now().timestamp())
    async with serve(fake.app()) as base:
        yield Served(fake, base + CARRIER_PATH)


@pytest.fixture
async def fake_alipay(clock: FakeClock) -> AsyncIterator[Served[FakeAlipay]]:
    fake = make_alipay(clock)
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/gateway.do")


@pytest.fixture
async def make_bot(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    clock: FakeClock,
    sqlite_url: str,
) -> BotFactory:
    async def factory(settings: Settings | None = None, **kwargs: Any) -> Bot:
        app = create_app(
            settings or make_settings(sqlite_url), clock=clock, workers=False, **kwargs
        )
        return Bot(await aiohttp_client(app), clock)

    return factory


@pytest.fixture
async def bot(make_bot: BotFactory) -> Bot:
    return await make_bot()

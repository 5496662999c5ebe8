"""/readyz is ready only when the database takes a write (a read-only SQLite file answers
every SELECT) and Redis answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import Database
from tests.support.app import BotFactory, make_settings
from tests.support.redis_proxy import redis_proxy


async def test_ready_fails_when_sqlite_cannot_write(make_bot: BotFactory, tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    bot = await make_bot(make_settings(f"sqlite+aiosqlite:///{path}"))
    resp = await bot.client.get("/readyz")
    assert resp.status == 200, await resp.text()
    # The file turns read-only under the running app, as on a read-only remount (chmod does
    # not stop root): every SELECT still works, no write does.
    writable = bot.svc.db
    bot.svc.db = Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    await writable.dispose()
    try:
        resp = await bot.client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503, body
        assert body["database"].startswith("not writable")
    finally:
        await bot.svc.db.dispose()
        bot.svc.db = Database(f"sqlite+aiosqlite:///{path}")


@pytest.mark.redis
async def test_ready_follows_redis_through_a_blip(
    make_bot: BotFactory, sqlite_url: str, redis_url: str
) -> None:
    async with redis_proxy(redis_url) as proxy:
        bot = await make_bot(make_settings(sqlite_url, redis={"url": proxy.url}))
        assert (await bot.client.get("/readyz")).status == 200
        await proxy.cut()
        resp = await bot.client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["redis"].startswith("unreachable")
        proxy.restore()
        assert (await bot.client.get("/readyz")).status == 200

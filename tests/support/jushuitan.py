"""A FakeJushuitan on port 0 and the `[warehouse]` settings that point at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import SecretStr

from handlers.clock import FakeClock
from integrations.jushuitan.fake import FakeJushuitan
from integrations.jushuitan.settings import WarehouseSettings
from integrations.jushuitan.warehouse import JushuitanWarehouse
from tests.support.fakes import serve
from tests.support.taobao import MemoryTokenStore

APP_KEY = "b0b7d1db226d4216a3d58df9ffa2dde5"
APP_SECRET = "jst-test-secret"


@dataclass
class JstWorld:
    fake: FakeJushuitan
    url: str
    session: aiohttp.ClientSession
    clock: FakeClock
    tokens: MemoryTokenStore

    def settings(self, **overrides: Any) -> WarehouseSettings:
        values: dict[str, Any] = {
            "connector": "jushuitan",
            "api_base": self.url,
            "app_key": APP_KEY,
            "app_secret": SecretStr(APP_SECRET),
            "access_token": SecretStr(self.fake.access_token),
            "refresh_token": SecretStr(self.fake.refresh_token),
            "batch_window_s": 0,
            "timeout_s": 0.5,
        }
        return WarehouseSettings.model_validate(values | overrides)

    def warehouse(self, **overrides: Any) -> JushuitanWarehouse:
        return JushuitanWarehouse(self.settings(**overrides), self.session, self.tokens, self.clock)


@contextlib.asynccontextmanager
async def jushuitan_world(
    session: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[JstWorld]:
    fake = FakeJushuitan(app_key=APP_KEY, app_secret=APP_SECRET, now=clock.now, hang_s=1.0)
    async with serve(fake.app()) as url:
        yield JstWorld(fake, url, session, clock, MemoryTokenStore())

"""A FakeTaobao on port 0, a shop that points at it, and tokens kept in memory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from handlers.clock import FakeClock
from integrations.shop.connector import Tokens
from integrations.shop.settings import ShopSettings
from integrations.taobao.connector import TaobaoConnector
from integrations.taobao.fake import FakeTaobao
from tests.support.fakes import serve

APP_KEY = "12345678"
APP_SECRET = "helloworld"
ACCESS = "at-initial"
REFRESH = "rt-initial"


@dataclass
class MemoryTokenStore:
    tokens: Tokens | None = None
    saves: list[Tokens] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def load(self) -> Tokens | None:
        return self.tokens

    async def save(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.saves.append(tokens)

    def lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        async with self._lock:
            yield


def make_shop(url: str, platform: str = "taobao", **overrides: object) -> ShopSettings:
    values: dict[str, object] = {
        "id": "tb1",
        "platform": platform,
        "connector": "taobao",
        "app_key": APP_KEY,
        "app_secret": SecretStr(APP_SECRET),
        "access_token": SecretStr(ACCESS),
        "refresh_token": SecretStr(REFRESH),
        "seller_nick": "好物旗舰店",
        "api_base": f"{url}/router/rest",
        "tmc_url": f"{url}/tmc",
        "operator": "好物旗舰店:小王",
        "timeout_s": 0.5,
        "pull_overlap_s": 300.0,
        **overrides,
    }
    return ShopSettings.model_validate(values)


@dataclass
class Rig:
    fake: FakeTaobao
    url: str
    connector: TaobaoConnector
    tokens: MemoryTokenStore
    clock: FakeClock


@contextlib.asynccontextmanager
async def taobao_rig(
    session: aiohttp.ClientSession, clock: FakeClock, platform: str = "taobao", **shop: object
) -> AsyncIterator[Rig]:
    fake = FakeTaobao(
        APP_KEY, APP_SECRET, clock.now, platform="tmall" if platform == "tmall" else "taobao"
    )
    fake.grant(ACCESS, REFRESH)
    async with serve(fake.app()) as url:
        tokens = MemoryTokenStore()
        connector = TaobaoConnector(make_shop(url, platform, **shop), session, tokens, clock)
        yield Rig(fake, url, connector, tokens, clock)

"""What the contract tests share: one HTTP session for the client under test, and the
淘宝 connector against its fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from handlers.clock import FakeClock
from tests.support.taobao import Rig, taobao_rig


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def rig(session: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Rig]:
    async with taobao_rig(session, clock) as made:
        yield made

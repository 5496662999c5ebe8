"""What the platform fakes share: waiting, without polling, for what a test expects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def wait_for(changed: asyncio.Event, check: Callable[[], Any], within: float) -> Any:
    """Until `check()` is truthy, re-checked each time `changed` is set; its value.

    Wakes the moment the awaited thing happens, so benchmarks can time it."""

    async def settle() -> Any:
        while True:
            changed.clear()
            if result := check():
                return result
            await changed.wait()

    async with asyncio.timeout(within):
        return await settle()

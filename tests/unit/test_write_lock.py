"""SQLite's in-process write queue: one holder at a time, urgent writers first."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import WriteLock


async def test_urgent_waiters_go_before_background_waiters() -> None:
    lock = WriteLock()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, urgent: bool, gate: asyncio.Event | None = None) -> None:
        async with lock.hold(urgent=urgent):
            order.append(name)
            if gate is not None:
                await gate.wait()

    first = asyncio.create_task(hold("first", False, release))
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(hold("bg1", False)),
        asyncio.create_task(hold("ingest1", True)),
        asyncio.create_task(hold("bg2", False)),
        asyncio.create_task(hold("ingest2", True)),
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "ingest1", "ingest2", "bg1", "bg2"]


async def test_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = WriteLock()
    gate = asyncio.Event()

    async def hold(urgent: bool, wait: bool) -> None:
        async with lock.hold(urgent=urgent):
            if wait:
                await gate.wait()

    holder = asyncio.create_task(hold(False, True))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(hold(True, False))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.set()
    await holder
    await asyncio.wait_for(hold(False, False), 1)
    assert doomed.cancelled()


async def test_a_waiter_cancelled_as_the_lock_is_released_leaves_it_free() -> None:
    lock = WriteLock()

    async def enter() -> None:
        async with lock.hold(urgent=False):
            pass

    async with lock.hold(urgent=True):
        waiting = asyncio.create_task(enter())
        await asyncio.sleep(0)  # queued behind us
        waiting.cancel()
    # Released before the waiter saw its cancellation: the release passed it over.
    with pytest.raises(asyncio.CancelledError):
        await waiting
    async with asyncio.timeout(1), lock.hold(urgent=False):
        pass

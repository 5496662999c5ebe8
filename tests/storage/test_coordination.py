"""Coordination: the in-process implementation and the Redis one behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storage.coordination import Coordination, InProcessCoordination, TokenBucket
from storage.redis_coordination import RedisCoordination


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def redis_or_memory(request: pytest.FixtureRequest) -> str | None:
    """The test Redis's URL, or None for the in-process implementation."""
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def coord(redis_or_memory: str | None) -> AsyncIterator[Coordination]:
    if redis_or_memory is None:
        yield InProcessCoordination()
        return
    shared = await RedisCoordination.connect(redis_or_memory)
    yield shared
    await shared.close()


async def test_first_seen_dedups(coord: Coordination) -> None:
    assert await coord.first_seen("wecom:msg1", 60)
    assert not await coord.first_seen("wecom:msg1", 60)
    assert await coord.first_seen("wecom:msg2", 60)


async def test_token_bucket_grants_burst_then_asks_to_wait(coord: Coordination) -> None:
    grants = [await coord.take("webhook:g1", 20, 3) for _ in range(4)]
    assert grants[:3] == [0.0, 0.0, 0.0]
    assert 2.0 < grants[3] <= 3.05
    assert await coord.take("webhook:g2", 20, 3) == 0.0


async def test_cache_values_expire(coord: Coordination) -> None:
    await coord.cache_set("token:app", "abc", 0.2)
    assert await coord.cache_get("token:app") == "abc"
    await asyncio.sleep(0.3)
    assert await coord.cache_get("token:app") is None


async def test_lock_is_exclusive(coord: Coordination) -> None:
    inside: list[int] = []
    overlaps = 0

    async def worker(i: int) -> None:
        nonlocal overlaps
        async with coord.lock("refresh", 5):
            if inside:
                overlaps += 1
            inside.append(i)
            await asyncio.sleep(0.01)
            inside.remove(i)

    await asyncio.gather(*(worker(i) for i in range(5)))
    assert overlaps == 0


async def test_publish_reaches_subscribers(coord: Coordination) -> None:
    stream = coord.subscribe("sandbox:g")
    receiver = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)
    await coord.publish("sandbox:g", "hello")
    assert await asyncio.wait_for(receiver, 2) == "hello"
    await stream.aclose()  # type: ignore[attr-defined]


def test_token_bucket_refills_over_time() -> None:
    now = [0.0]
    bucket = TokenBucket(60, 1, monotonic=lambda: now[0])
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(1.0)
    now[0] = 1.0
    assert bucket.take() == 0.0

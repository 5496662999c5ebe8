"""What instances share but need not keep: inbound dedup, token buckets, wake-ups, fan-out.

One protocol, two implementations: `InProcessCoordination` for a single instance and
`RedisCoordination` (storage.redis_coordination) when `[redis] url` is set. A shared store that
cannot be reached raises `CoordinationError`: nothing was decided, ask again later.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Protocol


class CoordinationError(Exception):
    """The shared store could not be reached (connection refused or lost, timeout, loading)."""


class Coordination(Protocol):
    async def first_seen(self, key: str, ttl_s: int) -> bool:
        """True the first time `key` is offered within `ttl_s` seconds, False after."""

    async def take(self, bucket: str, per_minute: float, burst: int) -> float:
        """Take one token; 0.0 when granted, else the seconds to wait before asking again."""

    async def cache_get(self, key: str) -> str | None:
        """A shared short-lived value (platform access tokens), or None."""

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None: ...

    def notify(self, topic: str) -> None:
        """Wake every worker waiting on `topic`, here and on other instances."""

    async def wait(self, topic: str, max_wait_s: float) -> None:
        """Return when `topic` is notified or after `max_wait_s` seconds."""

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[str]: ...

    def lock(self, name: str, ttl_s: float) -> AbstractAsyncContextManager[None]:
        """Hold `name` exclusively (across instances with Redis) for at most `ttl_s`."""

    async def ping(self) -> None:
        """Raise when the shared store cannot be reached."""

    async def listen(self) -> None:
        """Relay other instances' notifications until cancelled (idle in one process)."""

    async def close(self) -> None: ...


class TokenBucket:
    """A classic token bucket; `monotonic` is injectable for tests."""

    def __init__(
        self, per_minute: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.monotonic = monotonic
        self.stamp = monotonic()

    def take(self) -> float:
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class InProcessCoordination:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen: dict[str, float] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._cache: dict[str, tuple[str, float]] = {}
        self._events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._subscribers: defaultdict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def first_seen(self, key: str, ttl_s: int) -> bool:
        now = self._monotonic()
        if len(self._seen) > 100_000:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl_s
        return True

    async def take(self, bucket: str, per_minute: float, burst: int) -> float:
        tb = self._buckets.get(bucket)
        if tb is None:
            tb = self._buckets[bucket] = TokenBucket(per_minute, burst, self._monotonic)
        return tb.take()

    async def cache_get(self, key: str) -> str | None:
        hit = self._cache.get(key)
        if hit is None or hit[1] <= self._monotonic():
            return None
        return hit[0]

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None:
        self._cache[key] = (value, self._monotonic() + ttl_s)

    def notify(self, topic: str) -> None:
        self._events[topic].set()

    async def wait(self, topic: str, max_wait_s: float) -> None:
        ev = self._events[topic]
        with suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), max_wait_s)
        ev.clear()

    async def publish(self, channel: str, message: str) -> None:
        for queue in list(self._subscribers[channel]):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subscribers[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[channel].discard(queue)

    @asynccontextmanager
    async def lock(self, name: str, ttl_s: float) -> AsyncIterator[None]:  # noqa: ARG002
        async with self._locks[name]:
            yield

    async def ping(self) -> None:
        return None

    async def listen(self) -> None:
        await asyncio.Event().wait()  # nothing to relay in one process; ends when cancelled

    async def close(self) -> None:
        self._subscribers.clear()

"""Coordination through Redis, for several instances: same protocol as the in-process one."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from storage import redis_keys

# One token bucket per key, refilled continuously; returns 0 when a token was taken, else
# the milliseconds until one will be there. Redis' own clock keeps instances consistent.
TAKE_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 60000)
return wait
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCoordination:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._take = client.register_script(TAKE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._events: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str) -> RedisCoordination:
        client = aioredis.Redis.from_url(url, decode_responses=True)
        await client.ping()
        return cls(client)

    async def first_seen(self, key: str, ttl_s: int) -> bool:
        return bool(await self.redis.set(redis_keys.dedup(key), "1", nx=True, ex=ttl_s))

    async def take(self, bucket: str, per_minute: float, burst: int) -> float:
        wait_ms = await self._take(
            keys=[redis_keys.bucket(bucket)], args=[per_minute / 60.0, burst]
        )
        return int(wait_ms) / 1000.0

    async def cache_get(self, key: str) -> str | None:
        value = await self.redis.get(redis_keys.cache(key))
        return None if value is None else str(value)

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None:
        await self.redis.set(redis_keys.cache(key), value, px=max(1, int(ttl_s * 1000)))

    def notify(self, topic: str) -> None:
        self._events[topic].set()
        task = asyncio.get_running_loop().create_task(self._publish(redis_keys.wake(topic), "1"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait(self, topic: str, max_wait_s: float) -> None:
        ev = self._events[topic]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), max_wait_s)
        ev.clear()

    async def _publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)

    async def listen(self) -> None:
        """Relay other instances' wake-ups to local waiters; runs as a lifecycle loop."""
        pubsub = self.redis.pubsub()
        await pubsub.psubscribe(redis_keys.wake("*"))
        prefix = redis_keys.wake("")
        try:
            async for message in pubsub.listen():
                if message.get("type") == "pmessage":
                    self._events[str(message["channel"])[len(prefix) :]].set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(redis_keys.fanout(channel), message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(redis_keys.fanout(channel))
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield str(message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def lock(self, name: str, ttl_s: float) -> AsyncIterator[None]:
        key, token = redis_keys.lock(name), secrets.token_hex(8)
        delay = 0.01
        while not await self.redis.set(key, token, nx=True, px=int(ttl_s * 1000)):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            await self._release(keys=[key], args=[token])

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.redis.aclose()

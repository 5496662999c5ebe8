"""Coordination through Redis, for several instances: same protocol as the in-process one.

Every way Redis can be out of reach (refused, dropped, timed out, loading, a read-only
replica) becomes one `CoordinationError`, raised once here; callers defer and ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis import exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from storage import redis_keys
from storage.coordination import CoordinationError

log = logging.getLogger(__name__)

UNREACHABLE: tuple[type[BaseException], ...] = (
    exceptions.ConnectionError,  # also BusyLoadingError, MaxConnectionsError
    exceptions.TimeoutError,
    exceptions.ReadOnlyError,
    exceptions.TryAgainError,
    exceptions.ClusterDownError,
    OSError,
    TimeoutError,
)
SOCKET_TIMEOUT_S = 5.0
HEALTH_CHECK_S = 15
LISTEN_BACKOFF_BASE_S = 0.2
LISTEN_BACKOFF_MAX_S = 5.0
LISTEN_POLL_S = 1.0


@contextlib.contextmanager
def reaching() -> Iterator[None]:
    """Turn Redis being out of reach into `CoordinationError`."""
    try:
        yield
    except UNREACHABLE as exc:
        raise CoordinationError(f"Redis unreachable: {type(exc).__name__}: {exc}") from exc


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
        self._publish_failing = False
        self.listening = asyncio.Event()

    @classmethod
    async def connect(cls, url: str) -> RedisCoordination:
        # Timeouts so that a silent network (not only a refused one) is noticed, too.
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            # A pooled connection that died with the old server is reopened on its next use.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
        )
        with reaching():
            await client.ping()
        return cls(client)

    async def first_seen(self, key: str, ttl_s: int) -> bool:
        with reaching():
            return bool(await self.redis.set(redis_keys.dedup(key), "1", nx=True, ex=ttl_s))

    async def take(self, bucket: str, per_minute: float, burst: int) -> float:
        with reaching():
            wait_ms = await self._take(
                keys=[redis_keys.bucket(bucket)], args=[per_minute / 60.0, burst]
            )
        return int(wait_ms) / 1000.0

    async def cache_get(self, key: str) -> str | None:
        with reaching():
            value = await self.redis.get(redis_keys.cache(key))
        return None if value is None else str(value)

    async def cache_set(self, key: str, value: str, ttl_s: float) -> None:
        with reaching():
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
        """A wake-up for other instances; one lost while Redis is away is made up by their poll."""
        try:
            await self.redis.publish(channel, message)
        except UNREACHABLE as exc:
            if not self._publish_failing:
                log.warning("wake-ups not published, Redis unreachable: %s", exc)
            self._publish_failing = True
        else:
            self._publish_failing = False

    async def listen(self) -> None:
        """Relay other instances' wake-ups to local waiters until cancelled; runs as a lifecycle
        loop. A lost connection is reopened with backoff, and every local waiter is woken then,
        since what was published meanwhile is gone."""
        delay = 0.0
        while True:
            try:
                await self._relay()
            except UNREACHABLE as exc:
                if self.listening.is_set() or delay == 0.0:
                    log.warning("Redis wake-up listener lost its connection: %s", exc)
                    delay = 0.0
                self.listening.clear()
                delay = min(LISTEN_BACKOFF_MAX_S, max(LISTEN_BACKOFF_BASE_S, delay * 2))
                await asyncio.sleep(delay)

    async def _relay(self) -> None:
        pubsub = self.redis.pubsub()
        prefix = redis_keys.wake("")
        try:
            await pubsub.psubscribe(redis_keys.wake("*"))
            if not self.listening.is_set():
                log.info("Redis wake-up listener subscribed")
            self.listening.set()
            for event in self._events.values():
                event.set()
            while True:
                message = await pubsub.get_message(timeout=LISTEN_POLL_S)
                if message is not None and message.get("type") == "pmessage":
                    self._events[str(message["channel"])[len(prefix) :]].set()
        finally:
            with contextlib.suppress(*UNREACHABLE):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def publish(self, channel: str, message: str) -> None:
        with reaching():
            await self.redis.publish(redis_keys.fanout(channel), message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        pubsub = self.redis.pubsub()
        try:
            with reaching():
                await pubsub.subscribe(redis_keys.fanout(channel))
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        yield str(message["data"])
        finally:
            with contextlib.suppress(*UNREACHABLE):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def lock(self, name: str, ttl_s: float) -> AsyncIterator[None]:
        key, token = redis_keys.lock(name), secrets.token_hex(8)
        delay = 0.01
        with reaching():
            while not await self.redis.set(key, token, nx=True, px=int(ttl_s * 1000)):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
        try:
            yield
        finally:
            # The work is done; a lock that cannot be released now runs out after `ttl_s`.
            try:
                await self._release(keys=[key], args=[token])
            except UNREACHABLE as exc:
                log.warning("lock %s not released, it expires by itself: %s", name, exc)

    async def ping(self) -> None:
        with reaching():
            await self.redis.ping()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.redis.aclose()

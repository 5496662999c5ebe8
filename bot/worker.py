"""The loop every background worker runs: a batch, then sleep until woken or the poll is due;
and the supervisor that keeps each background loop alive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from storage.coordination import Coordination

log = logging.getLogger(__name__)


async def forever(
    name: str,
    run_once: Callable[[], Awaitable[int]],
    coord: Coordination,
    topic: str,
    poll_s: float,
) -> None:
    """Call `run_once` while it finds work; otherwise wait for `topic` (or `poll_s`)."""
    while True:
        try:
            busy = await run_once()
        except Exception:
            log.exception("%s cycle failed", name)
            busy = 0
        if not busy:
            await coord.wait(topic, poll_s)


RESTART_BASE_S = 0.5
RESTART_MAX_S = 30.0
STEADY_S = 60.0  # a loop that ran this long before failing starts its backoff over


async def supervise(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run `loop` until cancelled: when it fails (or returns) it is logged and started again
    after a doubling pause, so no background task dies unnoticed or spins."""
    delay = 0.0
    while True:
        started = time.monotonic()
        try:
            await loop()
            log.warning("%s stopped; starting it again", name)
        except Exception:
            log.exception("%s failed; starting it again", name)
        if time.monotonic() - started > STEADY_S:
            delay = 0.0
        delay = min(RESTART_MAX_S, max(RESTART_BASE_S, delay * 2))
        await asyncio.sleep(delay)

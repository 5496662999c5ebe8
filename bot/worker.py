"""The loop every background worker runs: a batch, then sleep until woken or the poll is due."""

from __future__ import annotations

import logging
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

"""What each intercept key already did, so a retried outbox item never intercepts twice.

A key is marked before its request leaves and given its answer when one comes back; a key
with a mark and no answer was lost in flight and is never sent blind again.
"""

from __future__ import annotations

from typing import Any, Protocol

SENDING = "sending"


class Ledger(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, entry: dict[str, Any]) -> None: ...

    async def forget(self, key: str) -> None: ...


class MemoryLedger:
    """The process's own memory; a durable ledger (storage's connector state) survives restarts."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return dict(entry) if entry is not None else None

    async def put(self, key: str, entry: dict[str, Any]) -> None:
        self.entries[key] = dict(entry)

    async def forget(self, key: str) -> None:
        self.entries.pop(key, None)

"""Named leases through the database: one instance at a time holds a platform connection
(the WeCom AI bot's websocket, a 淘宝 app's TMC channel) or runs a shop's pull."""

from __future__ import annotations

import os
import secrets
import socket

from bot.services import BotServices
from storage.repositories.leases import LeaseRepository


class DatabaseLease:
    """A lease through the database: it works on SQLite and PostgreSQL alike, with or without
    Redis, and a Redis outage does not move the connection."""

    def __init__(self, svc: BotServices, name: str, ttl_s: float) -> None:
        self.svc = svc
        self.name = name
        self.ttl_s = ttl_s
        who = svc.settings.bot.instance_id or f"{socket.gethostname()}:{os.getpid()}"
        self.holder = f"{who}:{secrets.token_hex(4)}"[:128]

    async def take(self) -> bool:
        async with self.svc.tx() as tx:
            leases = LeaseRepository(tx.session)
            return await leases.take(self.name, self.holder, now=tx.now, ttl_s=self.ttl_s)

    async def release(self) -> None:
        async with self.svc.tx() as tx:
            await LeaseRepository(tx.session).release(self.name, self.holder)

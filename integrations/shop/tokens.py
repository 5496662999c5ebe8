"""A platform's access token kept fresh: read from the store (else the configured pair),
renewed within a margin of its expiry under the store's lock — once across instances, the
others reading what the first one saved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from handlers.clock import Clock
from integrations.shop.connector import Tokens, TokenStore

Renew = Callable[[Tokens | None], Awaitable[Tokens]]


class TokenKeeper:
    def __init__(
        self,
        store: TokenStore,
        configured: Tokens | None,
        clock: Clock,
        margin: timedelta,
        renew: Renew,
    ) -> None:
        self.store = store
        self.configured = configured
        self.clock = clock
        self.margin = margin
        self.renew = renew
        # The tokens last read or renewed: not read from the store again until they are due
        # or the platform refuses them (another instance's renewal retires them then).
        self.held: Tokens | None = None

    async def current(self) -> Tokens | None:
        self.held = await self.store.load() or self.configured
        return self.held

    def due(self, tokens: Tokens) -> bool:
        if not tokens.access_token:
            return True
        if tokens.expires_at is None:
            return False
        return tokens.expires_at - self.clock.now() <= self.margin

    async def access_token(self) -> str:
        if self.held is not None and not self.due(self.held):
            return self.held.access_token
        tokens = await self.current()
        if tokens is not None and not self.due(tokens):
            return tokens.access_token
        async with self.store.lock():
            # Another instance may have renewed it while we waited for the lock.
            tokens = await self.current()
            if tokens is not None and not self.due(tokens):
                return tokens.access_token
            self.held = await self.renew(tokens)
            return self.held.access_token

    async def renewed_after_rejection(self, used: str) -> str:
        """A fresh token after the platform refused `used` (expired or revoked early)."""
        async with self.store.lock():
            tokens = await self.current()
            if tokens is not None and tokens.access_token != used and not self.due(tokens):
                return tokens.access_token
            self.held = await self.renew(tokens)
            return self.held.access_token

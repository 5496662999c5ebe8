"""FakeCommerce: the merchant endpoint of the commerce webhook protocol, for tests.

It checks the signature and the ±300 s window, answers a repeated idempotency key with
the first answer (acting once), and records what it received. Knobs inject failures, and
`gate` holds every answer until it is set (a call still under way).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from integrations.signing import verify_headers


@dataclass
class FakeCommerce:
    secret: str = "commerce-secret"
    status: str = "done"
    fail_next: int = 0
    fail_status: int = 500
    refuse: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    bad_signatures: int = 0
    gate: asyncio.Event | None = None
    now: Callable[[], float] = time.time

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/refundops", self.handle)
        return app

    def performed(self, action: str) -> list[dict[str, Any]]:
        """Effects actually carried out (once per idempotency key), for one action."""
        return [e for e in self.effects.values() if e["action"] == action]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = verify_headers(self.secret, request.headers, body, now=self.now(), max_skew_s=300)
        if problem:
            self.bad_signatures += 1
            return web.json_response({"error": problem}, status=401)
        call = json.loads(body)
        self.requests.append(call)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "injected failure"}, status=self.fail_status)
        key = call["idempotency_key"]
        if key not in self.answers:
            refused = self.refuse.get(call["action"])
            if refused:
                self.answers[key] = {"status": "failed", "detail": refused}
            else:
                self.answers[key] = {"status": self.status, "detail": "ok"}
                self.effects[key] = call
        return web.json_response(self.answers[key])

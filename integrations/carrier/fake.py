"""FakeCarrier: the merchant's end of the intercept webhook, for tests.

It checks signature and ±300 s window, answers a repeated key with its first answer, records calls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from integrations.signing import verify_headers

PATH = "/intercepts"


@dataclass
class FakeCarrier:
    secret: str = "carrier-secret"
    status: str = "accepted"
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str = ""
    delay_s: float = 0.0
    refuse: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    bad_signatures: int = 0
    now: Callable[[], float] = time.time

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self.handle)
        return app

    def intercepted(self) -> list[str]:
        """Tracking numbers the carrier acted on (once per idempotency key)."""
        return [e["data"]["tracking_no"] for e in self.effects.values()]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = verify_headers(self.secret, request.headers, body, now=self.now(), max_skew_s=300)
        if problem:
            self.bad_signatures += 1
            return web.json_response({"error": problem}, status=401)
        call = json.loads(body)
        self.requests.append({**call, "headers": dict(request.headers)})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return web.json_response(
                {"error": "injected failure"}, status=self.fail_status, headers=headers
            )
        if call.get("action") != "intercept":
            return web.json_response(
                {"error": f"unknown action {call.get('action')!r}"}, status=400
            )
        key = call["idempotency_key"]
        if key not in self.answers:
            refused = self.refuse.get(call["data"]["tracking_no"])
            if refused:
                self.answers[key] = {"status": "failed", "detail": refused}
            else:
                self.answers[key] = {"status": self.status, "detail": "已受理拦截"}
                self.effects[key] = call
        return web.json_response(self.answers[key])

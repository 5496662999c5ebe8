"""FakeWebhook: the merchant's end of the signed webhook protocol (`integrations.webhook`), for
tests of the commerce and carrier calls that share it.

It checks the signature and the ±300 s window, answers a repeated idempotency key with its
first answer (acting once), and records what it received with the headers. Knobs inject
failures (`fail_next` with `fail_status` and `retry_after`), refuse chosen calls (`refuse`),
slow every answer (`delay_s`) or hold it until `gate` is set (a call still under way).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from integrations.signing import verify_headers


@dataclass
class FakeWebhook:
    secret: str = "webhook-secret"
    status: str = "done"
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str = ""
    delay_s: float = 0.0
    gate: asyncio.Event | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    bad_signatures: int = 0
    now: Callable[[], float] = time.time

    PATH: ClassVar[str] = "/refundops"
    # The actions this end answers; any other is a 400. Empty: every action.
    ACTIONS: ClassVar[frozenset[str]] = frozenset()
    DETAIL: ClassVar[str] = "ok"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.PATH, self.handle)
        return app

    def refusal(self, call: dict[str, Any]) -> str:
        """Why `call` is refused (a `refuse` knob matched), else ''."""
        return self.refuse.get(call["action"], "")

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
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return web.json_response(
                {"error": "injected failure"}, status=self.fail_status, headers=headers
            )
        if self.ACTIONS and call.get("action") not in self.ACTIONS:
            return web.json_response(
                {"error": f"unknown action {call.get('action')!r}"}, status=400
            )
        key = call["idempotency_key"]
        if key not in self.answers:
            if refused := self.refusal(call):
                self.answers[key] = {"status": "failed", "detail": refused}
            else:
                self.answers[key] = self.answer(call)
                self.effects[key] = call
        return web.json_response(self.answers[key])

    def answer(self, call: dict[str, Any]) -> dict[str, str]:  # noqa: ARG002 - for subclasses
        """The answer to a call that is carried out."""
        return {"status": self.status, "detail": self.DETAIL}

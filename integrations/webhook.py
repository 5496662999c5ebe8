"""A signed webhook call to the merchant's systems (commerce, carrier): one protocol, one client.

`POST <url>` `{"action", "idempotency_key", "data", "sent_at"}` signed as in
`integrations.signing`; 5xx, 429 (with Retry-After) and timeouts are retried, other 4xx
are final; the answer is JSON with a `status` and an optional `detail`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from integrations.signing import signed_headers


@dataclass(frozen=True)
class Answer:
    status: str
    detail: str


class SignedWebhook:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        clock: Clock,
        timeout_s: float,
        system: str,
    ) -> None:
        self.session = session
        self.url = url
        self.secret = secret
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.system = system

    async def call(self, action: str, key: str, data: dict[str, Any]) -> Answer:
        """POST the action; the answer's status and detail, or Retryable/PermanentError."""
        what = f"{self.system} {action}"
        now = self.clock.now()
        body = json.dumps(
            {"action": action, "idempotency_key": key, "data": data, "sent_at": now.isoformat()},
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        headers |= signed_headers(self.secret, int(now.timestamp()), body)
        try:
            async with self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout
            ) as resp:
                text = await resp.text()
                if resp.status == 429 or resp.status >= 500:
                    retry_after = resp.headers.get("Retry-After", "")
                    defer = float(retry_after) if retry_after.isdigit() else None
                    raise RetryableError(f"{what}: HTTP {resp.status} {text[:200]}", defer=defer)
                if resp.status >= 400:
                    raise PermanentError(f"{what}: HTTP {resp.status} {text[:200]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"{what}: {type(exc).__name__} {exc}") from exc
        try:
            answer = json.loads(text)
            return Answer(str(answer["status"]), str(answer.get("detail", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableError(f"{what}: unreadable answer {text[:200]!r}") from exc

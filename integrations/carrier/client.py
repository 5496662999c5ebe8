"""Intercept requests to the merchant's carrier or ERP endpoint: a generic signed webhook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp

from bot.clock import Clock
from bot.errors import PermanentError, RetryableError
from integrations.signing import signed_headers

# The protocol (the merchant's carrier/ERP bridge implements it):
#   POST <[carrier] url>  JSON {"action": "intercept", "idempotency_key", "data", "sent_at"}
#   headers X-Refundops-Timestamp / X-Refundops-Signature (integrations.signing) and
#   Idempotency-Key; data {"carrier", "tracking_no", "order_id", "shop", "platform",
#   "refund_ids", "reason"}
#   → 200 {"status": "accepted" | "intercepted" | "failed", "detail": "..."}
# "accepted": the carrier took it and reports later (an `intercept.result` event);
# "intercepted" / "failed": answered at once. A key may arrive again (retries, restarts):
# answer it again, never intercept twice. 5xx, 429 and timeouts are retried; other 4xx
# are final.

AnswerStatus = Literal["accepted", "intercepted", "failed"]
ANSWERS: tuple[AnswerStatus, ...] = ("accepted", "intercepted", "failed")


@dataclass(frozen=True)
class CarrierAnswer:
    status: AnswerStatus
    detail: str = ""


class Carrier(Protocol):
    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer: ...


class WebhookCarrier:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, secret: str, clock: Clock, timeout_s: float
    ) -> None:
        self.session = session
        self.url = url
        self.secret = secret
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        now = self.clock.now()
        body = json.dumps(
            {
                "action": "intercept",
                "idempotency_key": key,
                "data": data,
                "sent_at": now.isoformat(),
            },
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
                    raise RetryableError(
                        f"carrier intercept: HTTP {resp.status} {text[:200]}", defer=defer
                    )
                if resp.status >= 400:
                    raise PermanentError(f"carrier intercept: HTTP {resp.status} {text[:200]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"carrier intercept: {type(exc).__name__} {exc}") from exc
        try:
            answer = json.loads(text)
            status = str(answer["status"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableError(f"carrier intercept: unreadable answer {text[:200]!r}") from exc
        for known in ANSWERS:
            if status == known:
                return CarrierAnswer(known, str(answer.get("detail", "")))
        raise RetryableError(f"carrier intercept: unknown status {status!r}")


class NoCarrier:
    """`[carrier] mode = "none"`: the team intercepts by phone and records the result in chat."""

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:  # noqa: ARG002
        return CarrierAnswer(
            "accepted", "未接快递系统：请电话联系快递拦截，再用「拦截成功 / 拦截失败」登记结果"
        )

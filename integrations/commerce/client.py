"""Calls into the shop's systems: a generic signed webhook, the demo's simulator, or none.

Webhook protocol (the merchant's ERP/RPA endpoint implements it):
    POST <[commerce] url>   JSON {"action", "idempotency_key", "data", "sent_at"}
    headers X-Refundops-Timestamp / X-Refundops-Signature (integrations.signing)
    → 200 {"status": "done" | "pending" | "failed", "detail": "..."}
    (`stop_shipment` may also answer "shipped": the parcel already left the warehouse)
The same idempotency key may arrive more than once (retries, restarts): answer it again,
never act twice. 5xx, 429 and timeouts are retried with backoff; other 4xx and
"failed" are final. `send_buyer_message` carries {refund_id, order_id, shop, platform,
text, template, sent_by}: the text goes to the buyer's conversation on the platform.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import MANUAL, MANUAL_TEXT, SHIPPED, CommerceResult
from integrations.webhook import SignedWebhook

ACTIONS = (
    "approve_refund",
    "reject_refund",
    "stop_shipment",
    "send_buyer_message",
    "notify_payout",
)


class WebhookCommerce:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, secret: str, clock: Clock, timeout_s: float
    ) -> None:
        self.webhook = SignedWebhook(session, url, secret, clock, timeout_s, "commerce")

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:
        answer = await self.webhook.call(action, key, data)
        if answer.status == "failed":
            raise PermanentError(answer.detail or f"commerce refused {action}")
        if answer.status == SHIPPED and action == "stop_shipment":
            return CommerceResult(SHIPPED, answer.detail or "仓库已发货")
        if answer.status not in ("done", "pending"):
            raise RetryableError(f"commerce {action}: unknown status {answer.status!r}")
        return CommerceResult(answer.status, answer.detail)


class SimulatedCommerce:
    """The demo's shop backend: answers like a healthy ERP, now and then a little slowly."""

    def __init__(
        self,
        seed: int | None = None,
        failure_rate: float = 0.0,
        latency_s: tuple[float, float] = (0.05, 0.3),
    ) -> None:
        self.random = random.Random(seed)
        self.failure_rate = failure_rate
        self.latency_s = latency_s
        self.calls: dict[str, CommerceResult] = {}

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:  # noqa: ARG002
        if key in self.calls:
            return self.calls[key]
        await asyncio.sleep(self.random.uniform(*self.latency_s))
        if self.random.random() < self.failure_rate:
            raise RetryableError("simulated ERP timeout")
        if action == "stop_shipment" and self.random.random() < 0.1:
            result = CommerceResult(SHIPPED, "仓库已出库")
        else:
            result = CommerceResult("done", "模拟店铺后台已处理")
        self.calls[key] = result
        return result


class NoCommerce:
    """`[commerce] mode = "none"`: decisions are recorded, nothing is sent; the cards say what
    to do by hand."""

    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult:  # noqa: ARG002
        return CommerceResult(MANUAL, MANUAL_TEXT.get(action, "未接店铺系统：请在平台后台手动处理"))

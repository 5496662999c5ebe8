"""Intercept requests to the merchant's carrier or ERP endpoint: a generic signed webhook."""

from __future__ import annotations

from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import RetryableError
from handlers.ports import AnswerStatus, CarrierAnswer
from integrations.webhook import SignedWebhook

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

ANSWERS: tuple[AnswerStatus, ...] = ("accepted", "intercepted", "failed")


class WebhookCarrier:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, secret: str, clock: Clock, timeout_s: float
    ) -> None:
        self.webhook = SignedWebhook(session, url, secret, clock, timeout_s, "carrier")

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        answer = await self.webhook.call("intercept", key, data)
        for known in ANSWERS:
            if answer.status == known:
                return CarrierAnswer(known, answer.detail)
        raise RetryableError(f"carrier intercept: unknown status {answer.status!r}")


class NoCarrier:
    """`[carrier] mode = "none"`: nothing is sent; the team intercepts by phone and records
    the result in chat."""

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:  # noqa: ARG002
        return CarrierAnswer("manual", "未接快递系统，拦截申请没有发出：请电话联系快递拦截")

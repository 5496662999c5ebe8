"""FakeCarrier: the merchant's end of the intercept webhook, for tests: the signed webhook fake
answering only `intercept`, refusing by tracking number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from integrations.webhook_fake import FakeWebhook

PATH = "/intercepts"


@dataclass
class FakeCarrier(FakeWebhook):
    secret: str = "carrier-secret"
    status: str = "accepted"

    PATH: ClassVar[str] = PATH
    ACTIONS: ClassVar[frozenset[str]] = frozenset({"intercept"})
    DETAIL: ClassVar[str] = "已受理拦截"

    def refusal(self, call: dict[str, Any]) -> str:
        return self.refuse.get(call["data"]["tracking_no"], "")

    def intercepted(self) -> list[str]:
        """Tracking numbers the carrier acted on (once per idempotency key)."""
        return [e["data"]["tracking_no"] for e in self.effects.values()]

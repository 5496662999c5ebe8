"""FakeCommerce: the merchant endpoint of the commerce webhook, for tests: the signed webhook
fake answering every action, refusing by action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.webhook_fake import FakeWebhook


@dataclass
class FakeCommerce(FakeWebhook):
    secret: str = "commerce-secret"
    # Orders whose parcel already left the warehouse: stop_shipment answers "shipped".
    shipped: dict[str, str] = field(default_factory=dict)

    def answer(self, call: dict[str, Any]) -> dict[str, str]:
        order = str(call.get("data", {}).get("order_id", ""))
        if call["action"] == "stop_shipment" and order in self.shipped:
            return {"status": "shipped", "detail": self.shipped[order]}
        return super().answer(call)

    def performed(self, action: str) -> list[dict[str, Any]]:
        """Effects actually carried out (once per idempotency key), for one action."""
        return [e for e in self.effects.values() if e["action"] == action]

"""FakeCommerce: the merchant endpoint of the commerce webhook, for tests: the signed webhook
fake answering every action, refusing by action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.webhook_fake import FakeWebhook


@dataclass
class FakeCommerce(FakeWebhook):
    secret: str = "commerce-secret"

    def performed(self, action: str) -> list[dict[str, Any]]:
        """Effects actually carried out (once per idempotency key), for one action."""
        return [e for e in self.effects.values() if e["action"] == action]

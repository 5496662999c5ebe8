"""The `[commerce]` section: how the shop's systems are reached, and the webhook's address."""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import ModeSettings


class CommerceSettings(ModeSettings):
    url: str = ""
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)

"""The `[carrier]` section: how intercepts reach the carrier, and Kuaidi100's push salt."""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import ModeSettings


class CarrierSettings(ModeSettings):
    url: str = ""
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)
    kuaidi100_salt: SecretStr = SecretStr("")

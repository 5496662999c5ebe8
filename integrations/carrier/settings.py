"""The `[carrier]` section: how intercepts reach the carrier — by hand, the generic webhook,
快递100 or 顺丰 丰桥 — which route each carrier's parcels take, and Kuaidi100's push salt."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from handlers.config import ModeSettings
from integrations.kuaidi100.settings import Kuaidi100Settings
from integrations.sf.settings import SfSettings

Route = Literal["kuaidi100", "sf", "webhook", "simulator", "none"]


class CarrierSettings(ModeSettings):
    # Wider than the core's ModeSettings.mode: the core never branches on it, and the two new
    # values are this package's own (pydantic takes the override; mypy sees the widening).
    mode: Literal["simulator", "webhook", "none", "kuaidi100", "sf"] = "none"  # type: ignore[assignment]
    url: str = ""
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)
    kuaidi100_salt: SecretStr = SecretStr("")
    # Carrier (as shops write it, or "*" for the rest) → route; without "*" the rest take `mode`.
    routes: dict[str, Route] = Field(default_factory=dict)
    kuaidi100: Kuaidi100Settings = Kuaidi100Settings()
    sf: SfSettings = SfSettings()

"""`[[shops]]`: one entry per shop — its platform, which connector reaches it, and its ids.

Secrets (`app_secret`, `access_token`, `refresh_token`) come from the secrets file (filled in
by shop id, like `[[groups]]`) or the environment (`REFUNDOPS_SHOP_<ID>__APP_SECRET`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from handlers.config import Section
from handlers.platforms import platform_id

Connector = Literal["douyin", "taobao", "webhook", "none"]
# Which platforms each connector speaks to.
CONNECTOR_PLATFORMS: dict[str, tuple[str, ...]] = {
    "douyin": ("douyin",),
    "taobao": ("taobao", "tmall"),
}


class ShopSettings(Section):
    id: str = Field(min_length=1, max_length=64)
    platform: str
    connector: Connector = "webhook"
    name: str = ""
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    refresh_token: SecretStr = SecretStr("")
    # 抖店: the shop's numeric id (自用型 token/create); 淘宝: the seller's nick (TMC user_nick).
    shop_id: str = ""
    seller_nick: str = ""
    api_base: str = ""
    tmc_url: str = ""
    tmc_group: str = "default"
    # 淘宝 write calls are made as this authorised sub-account (rp.refund.review `operator`).
    operator: str = ""
    sign_method: Literal["hmac-sha256", "md5", "hmac"] = "hmac-sha256"
    # Incremental pull: how often, how far back on the first run, how much to overlap.
    pull_interval_s: float = Field(default=300.0, gt=0)
    pull_start_h: float = Field(default=24.0, gt=0)
    pull_overlap_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("platform must be a string")
        return platform_id(value)

    @property
    def speaks_to_platform(self) -> bool:
        return self.connector in CONNECTOR_PLATFORMS

"""The `[wecom]` section (self-built app, webhook robots) and `[wecom.aibot]` (the AI bot)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import DomainSettings, Section


class WecomAibotSettings(Section):
    bot_id: str = ""
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    ws_url: str = "wss://openws.work.weixin.qq.com"
    heartbeat_s: float = Field(default=30.0, gt=0)
    reconnect_base_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    lease_s: float = Field(default=10.0, gt=0)


class WecomSettings(Section):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    callback_max_skew_s: int = Field(default=0, ge=0)
    api_base: str = "https://qyapi.weixin.qq.com"
    passive_wait_s: float = Field(default=3.0, ge=0, lt=5)
    throttle_wait_s: float = Field(default=60.0, gt=0)
    aibot: WecomAibotSettings = WecomAibotSettings()


class WecomConfig(DomainSettings):
    """What a WeCom channel reads: the domain's sections and `[wecom]`."""

    wecom: WecomSettings = WecomSettings()

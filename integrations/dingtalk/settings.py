"""The `[dingtalk]` section: the app, its robot and card template, and the API's addresses."""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import DomainSettings, Section


class DingtalkSettings(Section):
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    corp_id: str = ""
    robot_code: str = ""
    # The app's AgentId (开发者后台 → 凭证与基础信息): work notifications to the people a group
    # line names, since robot group messages cannot @ anyone. 0: none are sent.
    agent_id: int = Field(default=0, ge=0)
    card_template_id: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    card_callback_route_key: str = "refundops"
    callback_max_skew_s: int = Field(default=300, ge=1, le=3600)
    stream_backoff_base_s: float = Field(default=1.0, gt=0)
    stream_backoff_max_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    robot_mute_s: float = Field(default=600.0, gt=0)


class DingtalkConfig(DomainSettings):
    """What a DingTalk channel reads: the domain's sections and `[dingtalk]`."""

    dingtalk: DingtalkSettings = DingtalkSettings()

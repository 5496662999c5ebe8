"""The `[payout]` section: the core's payout policy plus the Alipay app's keys and gateway."""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import PayoutPolicy
from integrations.wechatpay.settings import WechatPaySettings


class PayoutSettings(PayoutPolicy):
    alipay_app_id: str = ""
    alipay_private_key: SecretStr = SecretStr("")
    alipay_public_key: str = ""
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"
    alipay_app_cert_sn: str = ""
    alipay_root_cert_sn: str = ""
    alipay_timeout_s: float = Field(default=10.0, gt=0)
    # `provider = "wechatpay"`: 商家转账 (docs: the payout section of the README).
    wechatpay: WechatPaySettings = WechatPaySettings()

"""The `[payout.wechatpay]` section: the merchant's keys, WeChat Pay's public key or platform
certificates, and how a transfer is declared (scene, what the buyer sees, report infos)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, SecretStr

from handlers.config import Section


@dataclass(frozen=True)
class Scene:
    """A 转账场景: the report infos it requires and the 用户收款感知 it may show."""

    name: str
    report_types: tuple[str, ...]
    perceptions: tuple[str, ...]


# The scenes after-sales payouts fit (商户平台 → 商家转账 → 转账场景; the per-scene table of
# 报备信息 and 用户收款感知 in the 商家转账 product docs). 补偿 / 补差价 are 企业赔付; 活动返现 is
# 现金营销. Paying for reviews (好评返现) fits none and is against the platforms' rules.
SCENES: dict[str, Scene] = {
    "1011": Scene("企业赔付", ("赔付原因",), ("退款", "商家赔付")),
    "1000": Scene("现金营销", ("活动名称", "奖励说明"), ("活动奖励", "现金奖励")),
}
FORBIDDEN_WORDS = ("好评",)


class ReportInfo(Section):
    """One 转账场景报备信息; `{title}` and `{remark}` in `info_content` come from the payout."""

    info_type: str
    info_content: str


class WechatPaySettings(Section):
    mchid: str = ""
    appid: str = ""
    # The merchant API private key (apiclient_key.pem) and its certificate's serial number.
    private_key: SecretStr = SecretStr("")
    cert_serial_no: str = ""
    apiv3_key: SecretStr = SecretStr("")
    # 微信支付公钥 (PEM) and its id `PUB_KEY_ID_…`; or a directory of platform certificates.
    public_key: str = ""
    public_key_id: str = ""
    platform_cert_dir: str = ""
    api_base: str = "https://api.mch.weixin.qq.com"
    notify_url: str = ""
    transfer_scene_id: str = "1011"
    user_recv_perception: str = "商家赔付"
    # Empty: each info the scene requires, filled with the payout's title (then its remark).
    report_infos: list[ReportInfo] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0)
    # Answers and notifications older or newer than this are refused (replays).
    max_skew_s: float = Field(default=300.0, gt=0)

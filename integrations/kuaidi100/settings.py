"""`[carrier.kuaidi100]`: the 快递100 account (key/secret) and, per carrier, the merchant's own
courier account that `interceptOrder` acts with.

Not in 快递100's public demos, so configurable here: which `interceptType` asks for a return
(the java-demo lists RETURN_SEND_STATION 退回寄件网点, RETURN_SEND_ADDR 退回寄件地址,
MODIFY_ADDR 修改地址; which ones a carrier accepts is not public) and the result callback's
field names and values (the demo only names `callbackUrl` and `salt` 回调加密参数).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from handlers.config import Section

API_BASE = "https://api.kuaidi100.com"


class CourierAccountSettings(Section):
    """One carrier's 电子面单 account (`partnerId`, `partnerKey`, …), as its local 网点 issued it;
    which fields a carrier requires is in 快递100's 参数字典, so all but partner_id are optional."""

    partner_id: str = ""
    partner_key: SecretStr = SecretStr("")
    partner_secret: SecretStr = SecretStr("")
    partner_name: str = ""
    code: str = ""
    net: str = ""
    # 发起方 1 寄方 2 收方 3 第三方; 付款方式 SHIPPER | CONSIGNEE | THIRDPARTY | MONTHLY.
    order_role: str = ""
    pay_type: str = ""
    # 中通服务商拦截模式 only.
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")


class CallbackFields(Section):
    """Where the intercept result callback's `param` JSON says what happened (unknown publicly)."""

    company: str = "kuaidicom"
    tracking_no: str = "kuaidinum"
    status: str = "status"
    detail: str = "message"
    intercepted: tuple[str, ...] = ("SUCCESS", "INTERCEPTED", "1")
    failed: tuple[str, ...] = ("FAIL", "FAILED", "2")
    returned: tuple[str, ...] = ("RETURNED", "3")


class Kuaidi100Settings(Section):
    api_base: str = API_BASE
    key: str = ""
    secret: SecretStr = SecretStr("")
    intercept_type: str = "RETURN_SEND_ADDR"
    # Keyed by carrier as shops write it (SF, ZTO, 中通 …): the courier account for its parcels.
    couriers: dict[str, CourierAccountSettings] = Field(default_factory=dict)
    callback_url: str = ""
    callback_salt: SecretStr = SecretStr("")
    callback: CallbackFields = CallbackFields()
    timeout_s: float = Field(default=10.0, gt=0)

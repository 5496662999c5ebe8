"""`[carrier.sf]`: the 丰桥 app (顾客编码 partner_id, 校验码 checkword), the 月结卡号 intercepts
are billed to, the return address a returned parcel goes to, and the route push's URL token."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from handlers.config import Section

PRODUCTION = "https://bspgw.sf-express.com/std/service"
SANDBOX = "https://sfapi-sbox.sf-express.com/std/service"


class SfAddress(Section):
    """`newDestAddress`: 转寄 and 退回 must carry it (province, city, county, address)."""

    province: str = ""
    city: str = ""
    county: str = ""
    address: str = ""
    contact: str = ""
    phone: str = ""


class SfSettings(Section):
    api_base: str = PRODUCTION
    partner_id: str = ""
    checkword: SecretStr = SecretStr("")
    monthly_card: str = ""
    # EXP_RECE_WANTED_INTERCEPT: serviceCode 2 退回, role 1 寄方, payMode 4 寄付月结
    # (1 寄付, 2 到付, 3 转第三方月结); a monthly payMode needs monthly_card.
    service_code: str = "2"
    role: Literal["1", "2", "3"] = "1"
    pay_mode: Literal["1", "2", "3", "4"] = "4"
    return_address: SfAddress = SfAddress()
    # The route push carries no signature; its URL ends in this token (see integrations.sf.models).
    push_token: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)

"""Alipay fund-transfer payloads: what we send (unknown fields forbidden) and what comes back
(unknown fields ignored); the provider-neutral order and result are in `handlers.ports`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TRANSFER = "alipay.fund.trans.uni.transfer"
QUERY = "alipay.fund.trans.common.query"
PRODUCT_CODE = "TRANS_ACCOUNT_NO_PWD"
BIZ_SCENE = "DIRECT_TRANSFER"


class Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PayeeInfo(Outbound):
    identity: str
    identity_type: Literal["ALIPAY_USER_ID", "ALIPAY_LOGON_ID", "ALIPAY_OPEN_ID"]
    name: str | None = None


class TransferBiz(Outbound):
    out_biz_no: str = Field(min_length=1, max_length=64)
    trans_amount: str = Field(pattern=r"^\d+\.\d{2}$")
    product_code: str = PRODUCT_CODE
    biz_scene: str = BIZ_SCENE
    order_title: str = Field(max_length=128)
    payee_info: PayeeInfo
    remark: str | None = Field(default=None, max_length=200)


class QueryBiz(Outbound):
    out_biz_no: str = Field(min_length=1, max_length=64)
    product_code: str = PRODUCT_CODE
    biz_scene: str = BIZ_SCENE


class Answer(BaseModel):
    """The common part of every `<method>_response` object."""

    model_config = ConfigDict(extra="ignore")

    code: str
    msg: str = ""
    sub_code: str = ""
    sub_msg: str = ""


class TransferAnswer(Answer):
    out_biz_no: str = ""
    order_id: str = ""
    pay_fund_order_id: str = ""
    status: str = ""
    trans_date: str = ""


class QueryAnswer(Answer):
    out_biz_no: str = ""
    order_id: str = ""
    pay_fund_order_id: str = ""
    status: str = ""
    trans_amount: str = ""
    pay_date: str = ""
    fail_reason: str = ""
    error_code: str = ""

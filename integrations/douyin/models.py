"""抖店 wire shapes as typed models: inbound ones ignore unknown fields, outbound ones forbid them.

Field names and types follow the official Go SDK (`api/<path>/response/*.go`, `message/*.go`).
Ids the platform sends as 19-digit numbers in one place and strings in another are read as
strings everywhere, so nothing is lost to float rounding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field


def _id_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an id is a number or a string")
    return str(value)


def _seconds(value: Any) -> int:
    """Unix seconds; the unofficial message structs type `update_time` as an RFC 3339 time, so
    a date string is read too."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError("a time is a number of seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    raise ValueError("a time is a number of seconds")


IdText = Annotated[str, BeforeValidator(_id_text)]
Seconds = Annotated[int, BeforeValidator(_seconds)]


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(Inbound):
    """Every API answer: `code` 10000 is success (the SDK's `IsSuccess`)."""

    code: int = 0
    msg: str = ""
    sub_code: str = ""
    sub_msg: str = ""
    log_id: str = ""
    data: Any = None


# -- token/create, token/refresh (core/create_token_request.go) ------------------------


class TokenData(Inbound):
    access_token: str
    expires_in: int = 0
    refresh_token: str = ""
    shop_id: IdText = ""
    shop_name: str = ""
    scope: str = ""


# -- push (message/doudian_message.go, message/*.go) -----------------------------------


class PushElement(Inbound):
    """One element of the pushed array; `data` is itself a JSON string (Go SDK). The .NET SDK's
    samples spell the id `msgId` and give `data` as an object: both are read."""

    tag: IdText
    msg_id: IdText = Field(default="", validation_alias=AliasChoices("msg_id", "msgId"))
    data: str | dict[str, Any]


class RefundMessage(Inbound):
    """Tags 200–227: the after-sale, its order and a few amounts, never the tracking."""

    aftersale_id: IdText
    aftersale_status: int = 0
    aftersale_type: int = -1
    p_id: IdText = ""
    s_id: IdText = ""
    shop_id: IdText = ""
    refund_amount: int | None = None
    refund_post_amount: int | None = None
    reason_code: int | None = None
    update_time: Seconds = 0
    status_deadline: Seconds = 0
    apply_time: Seconds = 0


class LogisticsMsg(Inbound):
    express_company_id: str = ""
    logistics_code: str = ""


class TradeLogisticsMessage(Inbound):
    """Tag 104 发货物流信息变更 (message-docs/30/113)."""

    p_id: IdText
    s_ids: list[IdText] = []
    shop_id: IdText = ""
    order_status: int = 0
    update_time: Seconds = 0
    logistics_msg: LogisticsMsg | None = None


# -- afterSale/Detail (api/afterSale_Detail/response) -----------------------------------


class Parcel(Inbound):
    tracking_no: str = ""
    company_name: str = ""
    company_code: str = ""
    logistics_time: Seconds = 0
    logistics_state: int = 0


class LogisticsInfo(Inbound):
    order: list[Parcel] = []
    # `return` is a Python keyword.
    return_: Parcel | None = Field(default=None, alias="return")


class AfterSaleInfo(Inbound):
    after_sale_id: IdText
    after_sale_status: int = 0
    after_sale_status_desc: str = ""
    after_sale_type: int = -1
    refund_status: int = 0
    refund_total_amount: int = 0
    refund_post_amount: int = 0
    real_refund_amount: int = 0
    apply_time: Seconds = 0
    update_time: Seconds = 0
    reason: str = ""
    reason_code: int = 0
    got_pkg: int = 0
    status_deadline: Seconds = 0


class ProcessInfo(Inbound):
    after_sale_info: AfterSaleInfo
    logistics_info: LogisticsInfo = LogisticsInfo()


class SkuOrder(Inbound):
    sku_order_id: IdText = ""
    order_status: int = 0
    pay_amount: int = 0
    product_name: str = ""


class OrderInfo(Inbound):
    shop_order_id: IdText = ""
    sku_order_infos: list[SkuOrder] = []


class AfterSaleDetail(Inbound):
    process_info: ProcessInfo
    order_info: OrderInfo = OrderInfo()


# -- afterSale/List (api/afterSale_List/response) ----------------------------------------


class ListAftersale(Inbound):
    aftersale_id: IdText
    aftersale_type: int = -1
    aftersale_status: int = 0
    related_id: IdText = ""
    apply_time: Seconds = 0
    update_time: Seconds = 0
    status_deadline: Seconds = 0
    refund_amount: int = 0
    refund_post_amount: int = 0
    refund_status: int = 0
    return_logistics_code: str = ""
    return_logistics_company_name: str = ""
    got_pkg: int = 0
    order_logistics: list[Parcel] = []


class RelatedOrder(Inbound):
    sku_order_id: IdText = ""
    pay_amount: int = 0
    logistics_code: str = ""
    logistics_company_name: str = ""


class ListOrder(Inbound):
    shop_order_id: IdText = ""
    related_order_info: list[RelatedOrder] = []


class TextPart(Inbound):
    reason_text: str = ""
    aftersale_status_text: str = ""


class ListItem(Inbound):
    aftersale_info: ListAftersale
    order_info: ListOrder = ListOrder()
    text_part: TextPart = TextPart()


class ListData(Inbound):
    items: list[ListItem] = []
    has_more: bool = False
    total: int = 0
    page: int = 0
    size: int = 0


# -- afterSale/operate (api/afterSale_operate) -------------------------------------------


class OperateLogistics(Outbound):
    receiver_address_id: int | None = None
    company_code: str | None = None
    logistics_code: str | None = None


class Evidence(Outbound):
    type: int
    url: str
    desc: str | None = None


class OperateItem(Outbound):
    aftersale_id: str
    reason: str | None = None
    remark: str | None = None
    evidence: list[Evidence] | None = None
    logistics: OperateLogistics | None = None
    reject_reason_code: int | None = None
    update_time: int | None = None


class OperateResult(Inbound):
    aftersale_id: IdText = ""
    status_code: int = 0
    status_msg: str = ""


class OperateData(Inbound):
    items: list[OperateResult] = []


# -- afterSale/rejectReasonCodeList ------------------------------------------------------


class RejectReasonItem(Inbound):
    reject_reason_code: int
    reason: str = ""
    evidence_need: str = "N"
    evidence_description: str = ""
    order_type: int = -1
    pkg: int = -1


class RejectReasonData(Inbound):
    items: list[RejectReasonItem] = []


# -- afterSale/applyLogisticsIntercept ---------------------------------------------------


class InterceptResult(Inbound):
    company_code: str = ""
    company_name: str = ""
    tracking_no: str = ""
    is_success: bool = False
    unavailable_reason_code: int = 0
    unavailable_reason: str = ""


class InterceptData(Inbound):
    intercept_results: list[InterceptResult] = []
    success_count: int = 0
    failed_count: int = 0
    unavailable_reason_code: int = 0
    unavailable_reason: str = ""

"""聚水潭 wire shapes: answers read leniently (unknown fields ignored), requests strictly.

Field names and limits follow the official docs as the ieu/jst-java SDK generated them
(snake_case in `biz`): 订单转异常 docType=4&docId=263, 订单查询 /open/orders/single/query,
退货退款查询 docType=9&docId=38.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Order statuses (订单查询 `status`).
WAIT_PAY = "WaitPay"
WAIT_CONFIRM = "WaitConfirm"  # 已付款待审核
WAIT_FCONFIRM = "WaitFConfirm"  # 已客审待财审
DELIVERING = "Delivering"  # 发货中
WAIT_OUTER_SENT = "WaitOuterSent"  # 等供销商|外仓发货
QUESTION = "Question"  # 异常
SENT = "Sent"  # 已发货
CANCELLED = "Cancelled"
MERGED = "Merged"
SPLIT = "Split"
ORDER_STATUS_TEXT = {
    WAIT_PAY: "待付款",
    WAIT_CONFIRM: "待审核",
    WAIT_FCONFIRM: "已客审待财审",
    DELIVERING: "发货中",
    WAIT_OUTER_SENT: "等外仓发货",
    QUESTION: "异常",
    SENT: "已发货",
    CANCELLED: "取消",
    MERGED: "被合并",
    SPLIT: "被拆分",
}


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(Inbound):
    code: int
    msg: str = ""
    data: Any = None

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value


class TokenData(Inbound):
    access_token: str
    refresh_token: str = ""
    expires_in: int = 0
    scope: str = ""


# -- 订单转异常 / 取消 -------------------------------------------------------------------

MAX_QUESTION_ORDERS = 50
MAX_CANCEL_ORDERS = 50


class QuestionsBiz(Outbound):
    o_ids: list[int] = Field(min_length=1, max_length=MAX_QUESTION_ORDERS)
    channel: str = ""
    question_type: str
    question_desc: str = ""


class QuestionFailure(Inbound):
    id: int | str = ""
    msg: str = ""


class QuestionsData(Inbound):
    success: int = 0
    fail: int = 0
    message: list[QuestionFailure] = Field(default_factory=list)

    @field_validator("message", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return [] if value is None else value


class CancelBiz(Outbound):
    o_ids: list[int] = Field(min_length=1, max_length=MAX_CANCEL_ORDERS)
    cancel_type: str
    remark: str = ""


# -- 订单查询 ----------------------------------------------------------------------------

MAX_ORDER_SO_IDS = 20  # "线上单号 … 最大限制20条"
MAX_PAGE_SIZE_ORDERS = 100


class OrderQueryBiz(Outbound):
    so_ids: list[str] = Field(min_length=1, max_length=MAX_ORDER_SO_IDS)
    page_index: int = Field(default=1, ge=1)
    page_size: int = Field(default=MAX_PAGE_SIZE_ORDERS, ge=1, le=MAX_PAGE_SIZE_ORDERS)


class Order(Inbound):
    o_id: int
    so_id: str = ""
    status: str = ""
    shop_id: int | None = None
    l_id: str | None = None
    logistics_company: str | None = None
    send_date: str | None = None
    question_type: str | None = None
    modified: str | None = None


class OrderPage(Inbound):
    page_index: int = 1
    page_size: int = 0
    data_count: int = 0
    page_count: int = 0
    has_next: bool = False
    orders: list[Order] = Field(default_factory=list)

    @field_validator("orders", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return [] if value is None else value


# -- 退货退款查询 ------------------------------------------------------------------------

# The SDK's field note: "每页多少条，默认30，最大50"; the modified window "不能超过七天".
MAX_PAGE_SIZE_REFUNDS = 50
MAX_REFUND_WINDOW_DAYS = 7


class RefundQueryBiz(Outbound):
    modified_begin: str
    modified_end: str
    page_index: int = Field(default=1, ge=1)
    page_size: int = Field(default=MAX_PAGE_SIZE_REFUNDS, ge=1, le=MAX_PAGE_SIZE_REFUNDS)
    shop_id: int | None = None


class RefundItem(Inbound):
    as_id: int
    as_date: str | None = None
    outer_as_id: str | None = None
    o_id: int | None = None
    so_id: str | None = None
    type: str = ""
    modified: str | None = None
    status: str = ""
    shop_status: str | None = None
    good_status: str | None = None
    order_status: str | None = None
    refund: Decimal | None = None
    shop_id: int | None = None
    l_id: str | None = None
    logistics_company: str | None = None
    question_type: str | None = None
    remark: str | None = None
    shop_buyer_id: str | None = None


class RefundPage(Inbound):
    page_index: int = 1
    page_size: int = 0
    data_count: int = 0
    page_count: int = 0
    has_next: bool = False
    datas: list[RefundItem] = Field(default_factory=list)

    @field_validator("datas", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return [] if value is None else value

"""The event envelope and each event type's data, as typed models; unknown fields are kept."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from handlers.money import yuan_to_fen

EVENT_TYPES = (
    "refund.requested",
    "refund.updated",
    "refund.cancelled",
    "refund.closed",
    "shipment.tracking",
    "intercept.result",
    "payout.requested",
    "buyer.message",
)
PLATFORMS = {
    "taobao": "淘宝",
    "tmall": "天猫",
    "pinduoduo": "拼多多",
    "douyin": "抖音",
    "jd": "京东",
    "wechat_channels": "视频号",
}
RefundKind = Literal["refund_only", "return_refund", "price_diff"]
ShippingStatus = Literal["unshipped", "shipped", "in_transit", "delivered"]
TrackingStatus = Literal[
    "created",
    "picked_up",
    "in_transit",
    "exception",
    "delivering",
    "delivered",
    "returned",
    "rejected",
]


def _money(value: Any) -> int:
    if isinstance(value, (bool, float)):
        raise ValueError('send money as a decimal string in yuan, like "128.00"')
    if not isinstance(value, str | int):
        raise ValueError('send money as a decimal string in yuan, like "128.00"')
    return yuan_to_fen(value)


Fen = Annotated[int, BeforeValidator(_money)]
Id = Annotated[str, Field(min_length=1, max_length=128)]


class Inbound(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class Shipping(Inbound):
    status: ShippingStatus = "unshipped"
    carrier: str = ""
    tracking_no: str = ""


class Buyer(Inbound):
    nick: str = ""


class RefundRequested(Inbound):
    refund_id: Id
    order_id: Id
    kind: RefundKind
    amount: Fen
    order_amount: Fen | None = None
    reason: str = ""
    shipping: Shipping = Shipping()
    buyer: Buyer = Buyer()
    deadline_at: AwareDatetime | None = None

    @field_validator("order_amount")
    @classmethod
    def _covers_amount(cls, order_amount: int | None, info: ValidationInfo) -> int | None:
        amount = info.data.get("amount")
        if order_amount is not None and amount is not None and amount > order_amount:
            raise ValueError("order_amount is smaller than the refund amount")
        return order_amount


class RefundUpdated(Inbound):
    refund_id: Id
    amount: Fen | None = None
    order_amount: Fen | None = None
    reason: str | None = None
    shipping: Shipping | None = None
    deadline_at: AwareDatetime | None = None
    return_tracking: dict[str, Any] | None = None
    return_status: Literal["shipped", "received", "qc_passed", "qc_failed"] | None = None
    qc_detail: str = ""

    @field_validator("order_amount")
    @classmethod
    def _covers_amount(cls, order_amount: int | None, info: ValidationInfo) -> int | None:
        # Only when both come together; one alone is checked against the case when applied.
        amount = info.data.get("amount")
        if order_amount is not None and amount is not None and amount > order_amount:
            raise ValueError("order_amount is smaller than the refund amount")
        return order_amount


class RefundEnded(Inbound):
    refund_id: Id
    detail: str = ""
    status: str = ""


class ShipmentTracking(Inbound):
    carrier: Id
    tracking_no: Id
    order_id: str = ""
    status: TrackingStatus
    at: AwareDatetime | None = None
    description: str = ""


class InterceptResult(Inbound):
    carrier: Id
    tracking_no: Id
    result: Literal["intercepted", "failed", "returned"]
    detail: str = ""


class Payee(Inbound):
    name: str = ""
    account: Id


class PayoutRequested(Inbound):
    payout_id: Id
    kind: Literal["cashback", "price_diff", "compensation"]
    order_id: str = ""
    amount: Fen = Field(gt=0)
    payee: Payee
    reason: str = ""
    requested_by: str = ""


class BuyerMessage(Inbound):
    refund_id: Id
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    at: AwareDatetime | None = None


DATA_MODELS: dict[str, type[Inbound]] = {
    "refund.requested": RefundRequested,
    "refund.updated": RefundUpdated,
    "refund.cancelled": RefundEnded,
    "refund.closed": RefundEnded,
    "shipment.tracking": ShipmentTracking,
    "intercept.result": InterceptResult,
    "payout.requested": PayoutRequested,
    "buyer.message": BuyerMessage,
}


class Envelope(Inbound):
    id: Id
    type: Literal[
        "refund.requested",
        "refund.updated",
        "refund.cancelled",
        "refund.closed",
        "shipment.tracking",
        "intercept.result",
        "payout.requested",
        "buyer.message",
    ]
    occurred_at: AwareDatetime
    shop: Annotated[str, Field(max_length=128)] = ""
    platform: Annotated[str, Field(max_length=32)] = ""
    data: dict[str, Any]

    def parsed(self) -> Inbound:
        return DATA_MODELS[self.type].model_validate(self.data)


class InvalidEventError(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """`[{"field": "data.amount", "message": ...}]`, the shape of every 400 we send."""
    return [
        {
            "field": (prefix + ".".join(str(p) for p in err["loc"])).rstrip(".") or "body",
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False)
    ]


def parse_event(raw: str | bytes | dict[str, Any], prefix: str = "") -> tuple[Envelope, Inbound]:
    """Validate an envelope and its data; InvalidEventError names every bad field."""
    try:
        envelope = (
            Envelope.model_validate(raw)
            if isinstance(raw, dict)
            else Envelope.model_validate_json(raw)
        )
    except ValidationError as exc:
        raise InvalidEventError(field_errors(exc, prefix)) from exc
    try:
        return envelope, envelope.parsed()
    except ValidationError as exc:
        raise InvalidEventError(field_errors(exc, f"{prefix}data.")) from exc

"""The event envelope and each event type's data, as typed models; unknown fields are kept.

The models are the one description of the wire: the ingest routes validate with them and
the OpenAPI document is generated from them. A value the models accept can be stored and
applied: string limits are the lengths of the columns they end up in, money is capped at
`MAX_AMOUNT_FEN`, dates lie in 2000–2099, and (handlers.payload) no key or string anywhere
holds what storage cannot.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
)
from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute

from handlers.money import MAX_AMOUNT_FEN, fen_to_yuan, yuan_to_fen
from handlers.payload import (
    MAX_DEPTH,
    PayloadError,
    clean,
    deeper_than,
    loads,
    plainly_storable,
    unstorable,
)
from storage.models import Case, Event, Parcel, Payout

EventType = Literal[
    "refund.requested",
    "refund.updated",
    "refund.cancelled",
    "refund.closed",
    "shipment.tracking",
    "intercept.result",
    "payout.requested",
    "buyer.message",
]
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


def length_of(column: InstrumentedAttribute[str]) -> int:
    """The length of a String column: the wire takes what the column holds, no more."""
    kind = column.expression.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a String column with a length")
    return kind.length


def _bounded(length: int, *, required: bool = False) -> Any:
    return Field(min_length=1 if required else 0, max_length=length)


# -- money: a decimal string in yuan, at most two decimals, at most MAX_AMOUNT_FEN ----------

MAX_AMOUNT_YUAN = MAX_AMOUNT_FEN // 100
_DIGITS = len(str(MAX_AMOUNT_YUAN)) - 1
if MAX_AMOUNT_YUAN != 10**_DIGITS:  # the pattern below spells the cap as 1 followed by zeros
    raise ValueError("MAX_AMOUNT_FEN must be a power of ten yuan")


def _amount_pattern(*, positive: bool) -> str:
    """Yuan with at most two decimals, at most MAX_AMOUNT_YUAN; no lookaheads, so that
    every JSON Schema tool (and data generators) reads it alike."""
    whole = f"[1-9][0-9]{{0,{_DIGITS - 1}}}(\\.[0-9]{{1,2}})?"
    small = "0\\.([1-9][0-9]?|0[1-9])" if positive else "0(\\.[0-9]{1,2})?"
    return f"^({whole}|{small}|{MAX_AMOUNT_YUAN}(\\.00?)?)$"


AMOUNT_PATTERN = _amount_pattern(positive=False)
POSITIVE_AMOUNT_PATTERN = _amount_pattern(positive=True)
AMOUNT_HINT = (
    f'send money as a decimal string in yuan with at most two decimals, like "128.00", '
    f"at most {MAX_AMOUNT_YUAN}"
)


def _money(pattern: str) -> Any:
    def validate(value: Any) -> int:
        if not isinstance(value, str):
            raise ValueError('send money as a decimal string in yuan, like "128.00"')
        if re.fullmatch(pattern, value):
            return yuan_to_fen(value)
        # Never hand the rest to Decimal: "1e999999999" would become a billion-digit int.
        if re.fullmatch(r"-[0-9.]+", value):
            raise ValueError("amount must not be negative")
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", value):
            raise ValueError("amount has more than two decimals")
        if re.fullmatch(r"[1-9][0-9]*(\.[0-9]{1,2})?", value):
            raise ValueError(f"amount is above the limit of {MAX_AMOUNT_YUAN} yuan")
        raise ValueError(AMOUNT_HINT if pattern == AMOUNT_PATTERN else AMOUNT_HINT + ", above 0")

    return validate


def _money_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": pattern, "description": "yuan", "examples": ["128.00"]}
    )


Fen = Annotated[int, BeforeValidator(_money(AMOUNT_PATTERN)), _money_schema(AMOUNT_PATTERN)]
PositiveFen = Annotated[
    int, BeforeValidator(_money(POSITIVE_AMOUNT_PATTERN)), _money_schema(POSITIVE_AMOUNT_PATTERN)
]


def yuan_text(fen: int) -> str:
    """Fen as the wire writes it: `12800` → `"128.00"`."""
    return str(fen_to_yuan(fen))


# -- dates: ISO 8601 with a timezone, in 2000–2099 ---------------------------------------

DATETIME_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
DATETIME_HINT = (
    "send an ISO 8601 datetime with a timezone, between 2000-01-01 and 2100-01-01, "
    "like 2026-11-23T10:00:00+08:00"
)


def _when(value: Any) -> Any:
    if isinstance(value, datetime):  # already parsed: re-validating a model's own dump
        value = value.isoformat()
    if not isinstance(value, str) or not re.fullmatch(DATETIME_PATTERN, value):
        raise ValueError(DATETIME_HINT)
    return value


When = Annotated[
    AwareDatetime,
    BeforeValidator(_when),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATETIME_PATTERN}),
]

# -- strings: each as long as the column it is stored in ---------------------------------

EventId = Annotated[str, _bounded(length_of(Event.id), required=True)]
RefundId = Annotated[str, _bounded(length_of(Case.case_id), required=True)]
OrderId = Annotated[str, _bounded(length_of(Case.order_id))]
Carrier = Annotated[str, _bounded(length_of(Parcel.carrier))]
TrackingNo = Annotated[str, _bounded(length_of(Parcel.tracking_no))]
PayoutId = Annotated[str, _bounded(length_of(Payout.payout_id), required=True)]
PayeeName = Annotated[str, _bounded(length_of(Payout.payee_name))]
PayeeAccount = Annotated[str, _bounded(length_of(Payout.payee_account), required=True)]
# The requester is also the case's last actor and an audit actor.
StaffRef = Annotated[str, _bounded(min(length_of(Payout.requested_by), length_of(Case.last_actor)))]


class Inbound(BaseModel):
    model_config = ConfigDict(extra="allow")


class Shipping(Inbound):
    status: ShippingStatus = "unshipped"
    carrier: Carrier = ""
    tracking_no: TrackingNo = ""


class Buyer(Inbound):
    nick: str = ""


def _order_covers_amount(order_amount: int | None, info: ValidationInfo) -> int | None:
    amount = info.data.get("amount")
    if order_amount is not None and amount is not None and amount > order_amount:
        raise ValueError("order_amount is smaller than the refund amount")
    return order_amount


class RefundRequested(Inbound):
    refund_id: RefundId
    order_id: Annotated[str, _bounded(length_of(Case.order_id), required=True)]
    kind: RefundKind
    amount: Fen
    order_amount: Fen | None = Field(default=None, description="at least `amount`")
    reason: str = ""
    shipping: Shipping = Shipping()
    buyer: Buyer = Buyer()
    deadline_at: When | None = None

    _covers_amount = field_validator("order_amount")(staticmethod(_order_covers_amount))


class RefundUpdated(Inbound):
    refund_id: RefundId
    amount: Fen | None = None
    order_amount: Fen | None = Field(
        default=None, description="at least `amount` when both are sent"
    )
    reason: str | None = None
    shipping: Shipping | None = None
    deadline_at: When | None = None
    return_tracking: dict[str, Any] | None = None
    return_status: Literal["shipped", "received", "qc_passed", "qc_failed"] | None = None
    qc_detail: str = ""

    # Only when both come together; one alone is checked against the case when applied.
    _covers_amount = field_validator("order_amount")(staticmethod(_order_covers_amount))


class RefundEnded(Inbound):
    refund_id: RefundId
    detail: str = ""
    status: str = ""


class ShipmentTracking(Inbound):
    carrier: Annotated[str, _bounded(length_of(Parcel.carrier), required=True)]
    tracking_no: Annotated[str, _bounded(length_of(Parcel.tracking_no), required=True)]
    order_id: Annotated[str, _bounded(length_of(Parcel.order_id))] = ""
    status: TrackingStatus
    at: When | None = None
    description: str = ""


class InterceptResult(Inbound):
    carrier: Annotated[str, _bounded(length_of(Parcel.carrier), required=True)]
    tracking_no: Annotated[str, _bounded(length_of(Parcel.tracking_no), required=True)]
    result: Literal["intercepted", "failed", "returned"]
    detail: str = ""


class Payee(Inbound):
    name: PayeeName = ""
    account: PayeeAccount


class PayoutRequested(Inbound):
    payout_id: PayoutId
    kind: Literal["cashback", "price_diff", "compensation"]
    order_id: OrderId = ""
    amount: PositiveFen
    payee: Payee
    reason: str = ""
    requested_by: StaffRef = ""


class BuyerMessage(Inbound):
    refund_id: RefundId
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    at: When | None = None


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


Shop = Annotated[str, _bounded(min(length_of(Event.shop), length_of(Case.shop)))]
Platform = Annotated[str, _bounded(min(length_of(Event.platform), length_of(Case.platform)))]


class Envelope(Inbound):
    id: EventId
    type: EventType
    occurred_at: When
    shop: Shop = ""
    platform: Platform = ""
    data: dict[str, Any]

    def parsed(self) -> Inbound:
        return DATA_MODELS[self.type].model_validate(self.data)


def _event_model(event_type: str, data_model: type[Inbound]) -> type[Inbound]:
    name = "".join(part.title() for part in event_type.split(".")) + "Event"
    model: type[Inbound] = create_model(
        name,
        __base__=Inbound,
        __doc__=f"A `{event_type}` event.",
        id=(EventId, ...),
        type=(cast(Any, Literal[event_type]), ...),
        occurred_at=(When, ...),
        shop=(Shop, ""),
        platform=(Platform, ""),
        data=(data_model, ...),
    )
    return model


# One model per event type, `data` typed: what the OpenAPI document describes as a union
# discriminated on `type`. Parsing goes through `Envelope` first so that a bad `type` is
# named as such.
EVENT_MODELS: dict[str, type[Inbound]] = {t: _event_model(t, m) for t, m in DATA_MODELS.items()}


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


def parse_event(raw: Any, prefix: str = "", *, storable: bool = False) -> tuple[Envelope, Inbound]:
    """Validate an envelope (JSON text, or already parsed) and its data; InvalidEventError
    names every bad field. `storable`: the JSON text it came from was `plainly_storable`,
    so storage can hold it without looking again."""
    if isinstance(raw, str | bytes | bytearray):
        storable = plainly_storable(raw)
        try:
            raw = loads(raw)
        except PayloadError as exc:
            raise InvalidEventError(exc.errors) from exc
    if not storable and not clean(raw, MAX_DEPTH):
        too_deep = deeper_than(raw, MAX_DEPTH, prefix)
        if too_deep is not None:
            message = f"too deeply nested (more than {MAX_DEPTH} levels)"
            raise InvalidEventError([{"field": too_deep or "body", "message": message}])
        if problems := unstorable(raw, prefix):
            raise InvalidEventError(problems)
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEventError(field_errors(exc, prefix)) from exc
    try:
        return envelope, envelope.parsed()
    except ValidationError as exc:
        raise InvalidEventError(field_errors(exc, f"{prefix}data.")) from exc

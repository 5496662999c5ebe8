"""What TOP and TMC send us, as models that ignore unknown fields.

Field names and meanings: bububa/opentaobao metadata (taobao.refund.get,
taobao.refunds.receive.get, taobao.refund.refusereason.get, taobao.refund.messages.get,
taobao.rp.refunds.agree) and tmc.js types/taobao.d.ts (namespace Taobao.Refund).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

OPEN_STATUSES = frozenset(
    {
        "WAIT_SELLER_AGREE",
        "WAIT_BUYER_RETURN_GOODS",
        "WAIT_SELLER_CONFIRM_GOODS",
        "SELLER_REFUSE_BUYER",
    }
)
ENDED_STATUSES = frozenset({"SUCCESS", "CLOSED"})
# Every field of taobao.refund.get we read.
REFUND_FIELDS = (
    "refund_id,tid,oid,buyer_nick,total_fee,status,created,modified,refund_fee,good_status,"
    "has_good_return,payment,reason,desc,company_name,sid,refund_remind_timeout,refund_phase,"
    "refund_version,order_status,dispute_type,operation_contraint"
)
# taobao.refunds.receive.get supports fewer (no refund_version, no timeout).
LIST_FIELDS = (
    "refund_id,tid,oid,buyer_nick,total_fee,status,created,modified,refund_fee,good_status,"
    "has_good_return,payment,reason,desc,company_name,sid,order_status,refund_phase,dispute_type"
)


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore")


def items(value: object) -> list[object]:
    """A TOP JSON list: classic answers wrap it in an object named after the item type
    (`"refunds": {"refund": [...]}`), `simplify=true` answers send the bare list."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (inner,) = value.values()
        return inner if isinstance(inner, list) else [inner]
    return []


def _text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class RemindTimeout(Inbound):
    exist_timeout: bool = False
    timeout: str = ""
    remind_type: int | None = None


class Refund(Inbound):
    refund_id: str
    tid: str = ""
    oid: str = ""
    buyer_nick: str = ""
    total_fee: str = ""
    status: str = ""
    created: str = ""
    modified: str = ""
    refund_fee: str = "0.00"
    good_status: str = ""
    has_good_return: bool = False
    payment: str = ""
    reason: str = ""
    desc: str = ""
    company_name: str = ""
    sid: str = ""
    refund_phase: str = ""
    refund_version: int | None = None
    order_status: str = ""
    dispute_type: str = ""
    operation_contraint: str = ""
    refund_remind_timeout: RemindTimeout | None = None

    _ids = field_validator("refund_id", "tid", "oid", mode="before")(staticmethod(_text))


class RefundMessageContent(Inbound):
    """The `content` of a taobao_refund_* message (types/taobao.d.ts, Taobao.Refund)."""

    refund_id: str
    tid: str = ""
    oid: str = ""
    bill_type: str = ""
    buyer_nick: str = ""
    refund_fee: str = ""
    refund_phase: str = ""
    modified: str = ""
    seller_nick: str = ""

    _ids = field_validator("refund_id", "tid", "oid", mode="before")(staticmethod(_text))


class OrderStatusSyncContent(Inbound):
    refund_order_id: str
    refund_status: str = ""
    modified_time: str = ""
    out_order_id: str = ""

    _ids = field_validator("refund_order_id", "refund_status", mode="before")(staticmethod(_text))


class RefuseReason(Inbound):
    reason_id: str
    reason_text: str = ""
    reason_tips: str = ""

    _ids = field_validator("reason_id", mode="before")(staticmethod(_text))


class RefundNote(Inbound):
    """One message on the refund thread (taobao.refund.messages.get `RefundMessage`)."""

    id: str
    content: str = ""
    created: str = ""
    owner_role: str = ""
    owner_nick: str = ""
    message_type: str = ""

    _ids = field_validator("id", "owner_role", mode="before")(staticmethod(_text))


class AgreeResult(Inbound):
    refund_id: str = ""
    succ: bool = False
    message: str = ""

    _ids = field_validator("refund_id", mode="before")(staticmethod(_text))


class AgreeAnswer(Inbound):
    succ: bool = False
    msg_code: str = ""
    message: str = ""
    results: list[AgreeResult] = Field(default_factory=list)

    _results = field_validator("results", mode="before")(staticmethod(items))


class TokenResult(Inbound):
    """`token_result` of taobao.top.auth.token.refresh (a JSON string in the answer)."""

    access_token: str
    refresh_token: str = ""
    expires_in: int = 0
    re_expires_in: int = 0
    taobao_user_nick: str = ""

"""The ports: what the core asks of the shop's systems, the carrier and the payout provider.

Adapters in `integrations/` implement these protocols; only the small values below cross them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

# The answer of `[commerce] mode = "none"`: nothing was sent; a person does it in the shop backend.
MANUAL = "manual"
MANUAL_TEXT = {
    "approve_refund": "未接店铺系统，退款没有发出：请在店铺后台手动退款",
    "reject_refund": "未接店铺系统，拒绝没有提交：请在店铺后台手动拒绝",
    "stop_shipment": "未接仓库/ERP，没有通知仓库：请手动截单",
    "send_buyer_message": "未接店铺系统，回复没有发出：请在平台后台回复买家",
    "notify_payout": "未接店铺系统，没有通知买家：请在平台后台告知买家已打款",
}


# The answer of a warehouse (ERP) asked to stop a shipment that has already left it: the
# refund must not go on as if the goods were stopped; the parcel is intercepted instead.
SHIPPED = "shipped"

# The answer of a platform that wants an SMS code before it agrees (淘宝 rp.refunds.agree):
# nothing moved; the approval is sent again with the code a person reads from the phone.
VERIFY = "verify"


@dataclass(frozen=True)
class CommerceResult:
    """`status`: "done" | "pending" (the shop system took it) | "manual" (nothing was sent) |
    "verify" (an SMS code is wanted first) | "shipped" (stop-shipment: the goods already
    left); `detail`: what it said."""

    status: str
    detail: str = ""


class Commerce(Protocol):
    async def call(self, action: str, key: str, data: dict[str, Any]) -> CommerceResult: ...


# "manual" is never a webhook's answer: it is `[carrier] mode = "none"` saying nothing was sent.
AnswerStatus = Literal["accepted", "intercepted", "failed", "manual"]


@dataclass(frozen=True)
class CarrierAnswer:
    status: AnswerStatus
    detail: str = ""


class Carrier(Protocol):
    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer: ...


class TransferStatus(StrEnum):
    SUCCESS = "success"
    PROCESSING = "processing"
    # WeChat Pay 商家转账: accepted, and waiting for the buyer to confirm receipt
    # (`TransferResult.confirm` carries what the buyer's confirm page needs).
    WAITING_BUYER = "waiting_buyer"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TransferOrder:
    """One transfer to make; `out_biz_no` is its idempotency key at the provider."""

    out_biz_no: str
    amount_fen: int
    account: str
    name: str
    title: str
    remark: str = ""


@dataclass(frozen=True)
class TransferResult:
    """What the provider said. SUCCESS and FAILED are final; UNKNOWN means: ask, never resend."""

    status: TransferStatus
    reference: str = ""
    provider_status: str = ""
    detail: str = ""
    confirm: str = ""


class Payouts(Protocol):
    """A provider that moves money itself; `out_biz_no` makes a repeated order harmless."""

    async def transfer(self, order: TransferOrder) -> TransferResult: ...

    async def query(self, out_biz_no: str) -> TransferResult: ...

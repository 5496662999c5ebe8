"""丰桥 as typed models: the form envelope's answer, EXP_RECE_WANTED_INTERCEPT's msgData, and
the route push mapped onto our `shipment.tracking` events.

Answer: `{apiResultCode, apiErrorMsg, apiResponseID, apiResultData}`, where `apiResultData`
is a JSON string `{success, errorCode ("S0000" on success), errorMsg, msgData}`; A1000 only
says the gateway passed the call on (丰桥 EXP_RECE_SEARCH_ROUTES doc, error code table).
Route push [R]: `POST` JSON `{"Body": {"WaybillRoute": [{id, mailno, orderid, acceptTime,
acceptAddress, remark, opCode}]}}`, acknowledged with `{"return_code": "0000", "return_msg":
"成功"}`. Integrators report it carries no signature (sandbox, 2026), so the receiver checks
a secret token in its own URL instead ([carrier.sf] push_token).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

CHINA = ZoneInfo("Asia/Shanghai")
INTERCEPT = "EXP_RECE_WANTED_INTERCEPT"
OK = "A1000"
SUCCESS = "S0000"
# Gateway codes (A1001 missing field, A1003 IP, A1004 no permission, A1006 bad digest,
# A1008 decrypt, A1010 sandbox status, A1011 OAuth) are ours to fix; these are passing trouble.
BUSY = frozenset({"A1005", "A1009", "A1099"})
PUSH_ACK = {"return_code": "0000", "return_msg": "成功"}

# opCode → our tracking status; the codes the docs' examples show (50/54 收件, 80 签收,
# 44/204 派件, 655 待揽收); any other is in transit.
OP_CODES: dict[str, str] = {
    "655": "created",
    "50": "picked_up",
    "54": "picked_up",
    "44": "delivering",
    "204": "delivering",
    "80": "delivered",
    "8000": "delivered",
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class NewDestAddress(_Out):
    province: str
    city: str
    county: str
    address: str
    contact: str = ""
    phone: str = ""


class WantedIntercept(_Out):
    waybillNo: str  # noqa: N815 (the vendor's field names)
    serviceCode: str  # noqa: N815
    role: str
    payMode: str  # noqa: N815
    monthlyCardNo: str = ""  # noqa: N815
    newDestAddress: NewDestAddress | None = None  # noqa: N815

    def text(self) -> str:
        return self.model_dump_json(exclude_defaults=True)


class ApiAnswer(_In):
    apiResultCode: str = ""  # noqa: N815
    apiErrorMsg: str | None = ""  # noqa: N815
    apiResponseID: str | None = ""  # noqa: N815
    apiResultData: str | None = None  # noqa: N815


class ResultData(_In):
    success: bool = False
    errorCode: str | None = ""  # noqa: N815
    errorMsg: str | None = ""  # noqa: N815
    msgData: Any = None  # noqa: N815


def china_time(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)


class RouteNode(_In):
    id: str = ""
    mailno: str
    orderid: str = ""
    acceptTime: str  # noqa: N815
    acceptAddress: str = ""  # noqa: N815
    remark: str = ""
    opCode: str = ""  # noqa: N815

    def tracking(self, *, shop: str = "", platform: str = "") -> dict[str, Any]:
        at = china_time(self.acceptTime)
        status = OP_CODES.get(self.opCode.strip(), "in_transit")
        description = " ".join(p for p in (self.acceptAddress, self.remark) if p)
        return {
            "id": f"sf:route:{self.mailno}:{self.id or self.opCode + at.strftime('%Y%m%d%H%M%S')}",
            "type": "shipment.tracking",
            "occurred_at": at.isoformat(),
            "shop": shop,
            "platform": platform,
            "data": {
                "carrier": "SF",
                "tracking_no": self.mailno,
                "order_id": self.orderid,
                "status": status,
                "at": at.isoformat(),
                "description": description,
                "source": "sf",
                "sf": {"opCode": self.opCode, "id": self.id},
                "scans": [{"at": at.isoformat(), "status": status, "description": description}],
            },
        }


class RouteBody(_In):
    WaybillRoute: list[RouteNode] = Field(default_factory=list)


class RoutePush(_In):
    Body: RouteBody

    def tracking(self, *, shop: str = "", platform: str = "") -> list[dict[str, Any]]:
        """One `shipment.tracking` envelope per route node, oldest first."""
        routes = sorted(self.Body.WaybillRoute, key=lambda r: china_time(r.acceptTime))
        return [r.tracking(shop=shop, platform=platform) for r in routes]

"""快递100 as typed models: the tracking push (`param` JSON) and its mapping onto our tracking
events, and the `interceptOrder` request and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

# 快递信息推送服务 · 推送接口: `status` polling | shutdown | abort | updateall, `message`,
# `lastResult {state, com, nu, data: [{context, time, ftime, status, statusCode}]}`, data
# newest first, times in China time. `state`: 0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签,
# 5 派件, 6 退回, 7 转投, 8 清关, 14 拒签; with `resultv2` also sub-states 101 已下单,
# 102 待揽收, 103 已揽收, 1001–1003 在途, 501 投柜或驿站, 301–304 签收, 401 已销单,
# 201–210 疑难 (203 拒收).

CHINA = ZoneInfo("Asia/Shanghai")

STATES: dict[str, str] = {
    "0": "in_transit",
    "1": "picked_up",
    "2": "exception",
    "3": "delivered",
    "4": "returned",
    "5": "delivering",
    "6": "returned",
    "7": "in_transit",
    "8": "in_transit",
    "10": "in_transit",
    "11": "in_transit",
    "12": "in_transit",
    "13": "exception",
    "14": "rejected",
    "101": "created",
    "102": "created",
    "103": "picked_up",
    "203": "rejected",
    "401": "returned",
}
STATE_NAMES: dict[str, str] = {
    "在途": "in_transit",
    "揽收": "picked_up",
    "疑难": "exception",
    "签收": "delivered",
    "退签": "returned",
    "派件": "delivering",
    "退回": "returned",
    "转投": "in_transit",
    "清关": "in_transit",
    "拒签": "rejected",
}
# 快递100 company codes → the carrier codes shop systems send in `shipment.tracking`.
COMPANIES: dict[str, str] = {
    "shunfeng": "SF",
    "zhongtong": "ZTO",
    "yuantong": "YTO",
    "yunda": "YD",
    "shentong": "STO",
    "jd": "JD",
    "ems": "EMS",
    "youzhengguonei": "YZPY",
    "jtexpress": "JT",
    "debangkuaidi": "DBL",
}


def tracking_status(state: str) -> str:
    """Our tracking status for a 快递100 state or sub-state."""
    state = state.strip()
    if state in STATES:
        return STATES[state]
    if len(state) == 4 and state.startswith("10"):
        return "in_transit"
    if len(state) == 3 and state[0] in STATES:
        return STATES[state[0]]
    return "in_transit"


def carrier_code(com: str) -> str:
    return COMPANIES.get(com.strip().lower(), com.strip().upper())


def china_time(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)


class _Vendor(BaseModel):
    # Inbound: unknown fields are ignored, numbers where text is documented are accepted.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Scan(_Vendor):
    context: str = ""
    time: str = ""
    ftime: str = ""
    status: str = ""
    statusCode: str = ""  # noqa: N815 (the vendor's field name)

    @property
    def at(self) -> datetime:
        return china_time(self.ftime or self.time)

    def tracking_status(self, fallback: str) -> str:
        if self.statusCode:
            return tracking_status(self.statusCode)
        return STATE_NAMES.get(self.status.strip(), fallback)


class LastResult(_Vendor):
    message: str = ""
    state: str = "0"
    com: str
    nu: str
    ischeck: str = "0"
    data: list[Scan] = []


class Push(_Vendor):
    status: str = "polling"
    message: str = ""
    autoCheck: str = "0"  # noqa: N815
    comOld: str = ""  # noqa: N815
    comNew: str = ""  # noqa: N815
    lastResult: LastResult | None = None  # noqa: N815

    def tracking(
        self, *, order_id: str = "", shop: str = "", platform: str = ""
    ) -> dict[str, Any] | None:
        """The push as a `shipment.tracking` envelope (newest scan), or None without scans."""
        result = self.lastResult
        if result is None or not result.data:
            return None
        newest = max(result.data, key=lambda s: s.at)
        status = tracking_status(result.state)
        at = newest.at
        carrier = carrier_code(result.com)
        return {
            "id": f"kuaidi100:{carrier}:{result.nu}:{result.state}:{at:%Y%m%d%H%M%S}",
            "type": "shipment.tracking",
            "occurred_at": at.isoformat(),
            "shop": shop,
            "platform": platform,
            "data": {
                "carrier": carrier,
                "tracking_no": result.nu,
                "order_id": order_id,
                "status": status,
                "at": at.isoformat(),
                "description": newest.context,
                "source": "kuaidi100",
                "kuaidi100": {"com": result.com, "state": result.state, "status": self.status},
                "scans": [
                    {
                        "at": s.at.isoformat(),
                        "status": s.tracking_status(status),
                        "description": s.context,
                    }
                    for s in result.data[:20]
                ],
            },
        }


# interceptOrder (拦截改址), POST {api_base}/label/order form key, method, t, sign, param:
# `param` fields from kuaidi100-api/java-demo request/labelV2/InterceptOrderReq.java (also the
# go-demo and nodejs-demo value_add/intercept_order): orderId, kuaidicom, kuaidinum, partnerId,
# partnerKey, partnerSecret, partnerName, code, net, reason, interceptType, recManInfo,
# orderRole, interceptPayType, salt, callbackUrl, appKey, appSecret. The answer is the label
# API's `{code: 200 on success, message, data, time}` (response/labelV2/Result.java); `data`
# carries a `taskId` (response/backorder/BackOrderResp.java).
INTERCEPT_METHOD = "interceptOrder"
ORDER_PATH = "/label/order"


class InterceptParam(BaseModel):
    # Outbound: nothing we did not mean to send; empty fields are left out.
    model_config = ConfigDict(extra="forbid")

    kuaidicom: str
    kuaidinum: str
    interceptType: str  # noqa: N815
    partnerId: str = ""  # noqa: N815
    partnerKey: str = ""  # noqa: N815
    partnerSecret: str = ""  # noqa: N815
    partnerName: str = ""  # noqa: N815
    code: str = ""
    net: str = ""
    reason: str = ""
    orderRole: str = ""  # noqa: N815
    interceptPayType: str = ""  # noqa: N815
    callbackUrl: str = ""  # noqa: N815
    salt: str = ""
    appKey: str = ""  # noqa: N815
    appSecret: str = ""  # noqa: N815

    def text(self) -> str:
        """The exact `param` text that is signed and sent."""
        return self.model_dump_json(exclude_defaults=True)


class OrderAnswer(_Vendor):
    code: str = ""
    message: str = ""
    data: dict[str, Any] | None = None

    @property
    def task_id(self) -> str:
        return str((self.data or {}).get("taskId") or "")

"""The carriers in the team's words: names, hotlines, tracking statuses and how a parcel is named."""

from __future__ import annotations

CARRIERS = {
    "SF": ("顺丰", "95338"),
    "ZTO": ("中通", "95311"),
    "YTO": ("圆通", "95554"),
    "YD": ("韵达", "95546"),
    "STO": ("申通", "95543"),
    "JD": ("京东", "950616"),
    "EMS": ("EMS", "11183"),
    "YZPY": ("中国邮政", "11183"),
    "JT": ("极兔", "956025"),
    "DBL": ("德邦", "95353"),
}
TRACKING_TEXT = {
    "created": "已发货 · 待揽收",
    "picked_up": "已揽收",
    "in_transit": "运输中",
    "exception": "异常",
    "delivering": "派件中",
    "delivered": "已签收",
    "returned": "退回中",
    "rejected": "拒收",
}


def carrier_name(code: str) -> str:
    return CARRIERS.get(code, (code, ""))[0]


def carrier_hotline(code: str) -> str:
    return CARRIERS.get(code, ("", ""))[1]


def parcel_text(carrier: str, tracking_no: str) -> str:
    return f"{carrier_name(carrier)} {tracking_no}"


def parcel_key(carrier: str, tracking_no: str) -> str:
    return f"{carrier}:{tracking_no}"

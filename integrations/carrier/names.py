"""Carrier names as shops and people write them (SF, 顺丰, 顺丰速运, shunfeng …), folded to our
codes (SF, ZTO, YTO, YD, STO, JD, EMS, JT, YZPY, DBL), and our codes to 快递100's company codes."""

from __future__ import annotations

# 快递100 company codes: kuaidi100-api/java-demo CompanyConstant (shunfeng, zhongtong, yuantong,
# shentong, yunda, ems, jd, debangkuaidi, jtexpress …); youzhengguonei from the tracking push.
KUAIDI100_CODES: dict[str, str] = {
    "SF": "shunfeng",
    "ZTO": "zhongtong",
    "YTO": "yuantong",
    "YD": "yunda",
    "STO": "shentong",
    "JD": "jd",
    "EMS": "ems",
    "YZPY": "youzhengguonei",
    "JT": "jtexpress",
    "DBL": "debangkuaidi",
    "HTKY": "huitongkuaidi",
    "ZJS": "zhaijisong",
}

ALIASES: dict[str, str] = {
    "顺丰": "SF",
    "顺丰速运": "SF",
    "顺丰快递": "SF",
    "SFEXPRESS": "SF",
    "中通": "ZTO",
    "中通快递": "ZTO",
    "ZT": "ZTO",
    "圆通": "YTO",
    "圆通速递": "YTO",
    "圆通快递": "YTO",
    "YT": "YTO",
    "韵达": "YD",
    "韵达快递": "YD",
    "YUNDA": "YD",
    "申通": "STO",
    "申通快递": "STO",
    "ST": "STO",
    "京东": "JD",
    "京东快递": "JD",
    "京东物流": "JD",
    "EMS": "EMS",
    "中国邮政": "YZPY",
    "邮政": "YZPY",
    "邮政快递包裹": "YZPY",
    "极兔": "JT",
    "极兔速递": "JT",
    "极兔快递": "JT",
    "J&T": "JT",
    "JTEXPRESS": "JT",
    "德邦": "DBL",
    "德邦快递": "DBL",
    "DB": "DBL",
    "百世": "HTKY",
    "百世快递": "HTKY",
    "宅急送": "ZJS",
}
_FROM_KUAIDI100 = {code: ours for ours, code in KUAIDI100_CODES.items()}


def carrier_code(name: str) -> str:
    """Our code for a carrier as written anywhere; an unknown name comes back upper-cased."""
    text = name.strip()
    upper = text.upper()
    if upper in KUAIDI100_CODES:
        return upper
    found = ALIASES.get(text) or ALIASES.get(upper) or _FROM_KUAIDI100.get(text.lower())
    return found or upper


def kuaidi100_code(name: str) -> str:
    """快递100's company code (`kuaidicom`), or "" when it is not one we know."""
    return KUAIDI100_CODES.get(carrier_code(name), "")

"""FakeSf: the 丰桥 gateway (`POST /std/service`) for EXP_RECE_WANTED_INTERCEPT, and the route
push it sends, for tests and the demo.

Written from the 丰桥 docs and demos: the form partnerID, requestID, serviceCode, timestamp,
msgDigest, msgData is required (A1001), the partnerID must be known and allowed the service
(A1004), the digest must be Base64(MD5(URLEncoder.encode(msgData + timestamp + checkword)))
(A1006). One requestID is one request: a repeat gets the first answer and acts no more.
Business refusals answer A1000 with `success: false`; their error codes for this service are
not public, so the fake's are its own (8114 bad field, 8252 refused). Knobs: refuse a waybill
(already delivered), answer busy (A1005), answer HTTP 500, hang after acting (the answer is
lost); `push_routes` posts route nodes the way 丰桥 pushes them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

PATH = "/std/service"
SERVICES = frozenset({"EXP_RECE_WANTED_INTERCEPT"})
FORM = ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")
UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")
CHINA = ZoneInfo("Asia/Shanghai")


def url_encoder(text: str) -> str:
    """java.net.URLEncoder.encode(text, "UTF-8")."""
    out = []
    for byte in text.encode("utf-8"):
        if byte in UNRESERVED:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


@dataclass
class Intercept:
    request_id: str
    msg: dict[str, Any]


@dataclass
class FakeSf:
    partner_id: str = "SFPARTNER"
    checkword: str = "sf-checkword"
    monthly_card: str = "7551234567"
    refuse: dict[str, str] = field(default_factory=dict)
    busy_next: int = 0
    fail_next: int = 0
    hang_next: int = 0
    hang_s: float = 1.0
    requests: list[dict[str, str]] = field(default_factory=list)
    intercepts: list[Intercept] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_digests: int = 0
    repeats: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self.handle)
        return app

    def intercepted(self) -> list[str]:
        """Waybills SF acted on, once per requestID however often it came."""
        return [str(i.msg["waybillNo"]) for i in self.intercepts]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="Internal Server Error")
        gateway = self._gateway(form)
        if gateway is not None:
            return web.json_response(_envelope(*gateway, None))
        if self.busy_next > 0:
            self.busy_next -= 1
            return web.json_response(_envelope("A1005", "流量受管控", None))
        first = self.answers.get(form["requestID"])
        if first is not None:
            self.repeats += 1
            return web.json_response(first)
        body = _envelope("A1000", "", self._intercept(form))
        self.answers[form["requestID"]] = body
        if self.hang_next > 0:
            self.hang_next -= 1
            await asyncio.sleep(self.hang_s)
        return web.json_response(body)

    def _gateway(self, form: dict[str, str]) -> tuple[str, str] | None:
        if any(not form.get(k) for k in FORM):
            return "A1001", "必传参数不可为空"
        if form["partnerID"] != self.partner_id or form["serviceCode"] not in SERVICES:
            return "A1004", "无对应服务权限"
        raw = url_encoder(form["msgData"] + form["timestamp"] + self.checkword)
        expected = base64.b64encode(hashlib.md5(raw.encode(), usedforsecurity=False).digest())
        if form["msgDigest"] != expected.decode():
            self.bad_digests += 1
            return "A1006", "数字签名无效"
        if len(form["requestID"]) > 40:
            return "A1001", "requestID 超长"
        return None

    def _intercept(self, form: dict[str, str]) -> dict[str, Any]:
        try:
            msg = json.loads(form["msgData"])
        except ValueError:
            return _result(False, "8114", "msgData 不是 JSON")
        problem = _check(msg, self.monthly_card) if isinstance(msg, dict) else "msgData 不是对象"
        if problem:
            return _result(False, "8114", problem)
        if msg["waybillNo"] in self.refuse:
            return _result(False, "8252", self.refuse[msg["waybillNo"]])
        self.intercepts.append(Intercept(form["requestID"], msg))
        return _result(True, "S0000", None)

    async def push_routes(
        self,
        session: aiohttp.ClientSession,
        url: str,
        nodes: list[tuple[str, str, datetime, str]],
    ) -> tuple[int, str]:
        """Push route nodes (waybill, opCode, at, remark) as 丰桥 does; (HTTP status, body)."""
        routes = [
            {
                "id": str(100000 + n),
                "mailno": waybill,
                "orderid": "",
                "acceptTime": f"{at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}",
                "acceptAddress": "深圳市",
                "remark": remark,
                "opCode": op_code,
            }
            for n, (waybill, op_code, at, remark) in enumerate(nodes)
        ]
        async with session.post(url, json={"Body": {"WaybillRoute": routes}}) as resp:
            return resp.status, await resp.text()


def _check(msg: dict[str, Any], monthly_card: str) -> str:
    if not msg.get("waybillNo"):
        return "waybillNo 不能为空"
    if str(msg.get("serviceCode")) not in {str(n) for n in (*range(1, 11), 12)}:
        return "serviceCode 不正确"
    if str(msg.get("role")) not in {"1", "2", "3"}:
        return "role 不正确"
    pay_mode = str(msg.get("payMode"))
    if pay_mode not in {"1", "2", "3", "4"}:
        return "payMode 不正确"
    if pay_mode in {"3", "4"} and msg.get("monthlyCardNo") != monthly_card:
        return "月结卡号不正确"
    if str(msg["serviceCode"]) in {"1", "2"}:
        address = msg.get("newDestAddress") or {}
        if not all(address.get(k) for k in ("province", "city", "county", "address")):
            return "转寄、退回须携带 newDestAddress"
    return ""


def _result(success: bool, code: str, message: str | None) -> dict[str, Any]:
    return {"success": success, "errorCode": code, "errorMsg": message, "msgData": None}


def _envelope(code: str, message: str, data: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "apiResultCode": code,
        "apiErrorMsg": message,
        "apiResponseID": "000" + hashlib.md5(str(data).encode(), usedforsecurity=False).hexdigest(),
        "apiResultData": json.dumps(data, ensure_ascii=False) if data is not None else None,
    }

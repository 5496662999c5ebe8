"""FakeKuaidi100: what 快递100 sends and serves, for tests.

The tracking push: the form posts 快递100 sends to a subscriber's callbackurl — `param` (the
push JSON, full history newest first) and `sign`, exactly as the vendor sends them.

`interceptOrder` on `POST /label/order` (written from kuaidi100-api java-demo / go-demo): form
key, method, t, sign = UPPER(MD5(param + t + key + secret)) over the exact `param` text; the
key, method, sign and a fresh `t` are required, and `param` must name the carrier
(`kuaidicom`), the waybill (`kuaidinum`), a known `interceptType` and the merchant's courier
account (`partnerId`). Success answers `{code: 200, message, data: {taskId}, time}`. The
refusal codes are not public: this fake answers 400 (bad request) and 30001 (refused) with a
message. Knobs: refuse a waybill (already delivered), answer 5xx, hang after acting (the
answer is lost), and send the result callback to the `callbackUrl` given, signed with the
request's `salt` as UPPER(MD5(param + salt)).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from integrations.kuaidi100.models import CHINA
from integrations.kuaidi100.signing import sign

STATE_NAMES = {
    "0": "在途",
    "1": "揽收",
    "2": "疑难",
    "3": "签收",
    "4": "退签",
    "5": "派件",
    "14": "拒签",
}
INTERCEPT_TYPES = frozenset({"RETURN_SEND_STATION", "RETURN_SEND_ADDR", "MODIFY_ADDR"})


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


@dataclass
class Intercept:
    task_id: str
    param: dict[str, Any]


@dataclass
class FakeKuaidi100:
    salt: str = "kuaidi100-salt"
    key: str = "kuaidi100-key"
    secret: str = "kuaidi100-secret"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_skew_s: float = 600.0
    refuse: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0
    hang_next: int = 0
    hang_s: float = 1.0
    requests: list[dict[str, str]] = field(default_factory=list)
    intercepts: list[Intercept] = field(default_factory=list)
    bad_signatures: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/label/order", self.handle)
        return app

    def intercepted(self) -> list[str]:
        """Waybills 快递100 passed on to the carrier, once per accepted request."""
        return [str(i.param["kuaidinum"]) for i in self.intercepts]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=502, text="Bad Gateway")
        problem = self._check(form)
        if problem is not None:
            return web.json_response({"code": 400, "message": problem, "data": None, "time": 1})
        param = json.loads(form["param"])
        waybill = str(param["kuaidinum"])
        if waybill in self.refuse:
            return web.json_response(
                {"code": 30001, "message": self.refuse[waybill], "data": None, "time": 1}
            )
        made = Intercept(task_id=f"KD{len(self.intercepts) + 1:08d}", param=param)
        self.intercepts.append(made)
        body = {"code": 200, "message": "success", "data": {"taskId": made.task_id}, "time": 3}
        if self.hang_next > 0:
            self.hang_next -= 1
            await asyncio.sleep(self.hang_s)
        return web.json_response(body)

    def _check(self, form: dict[str, str]) -> str | None:
        missing = [k for k in ("key", "method", "t", "sign", "param") if not form.get(k)]
        if missing:
            return f"缺少参数 {missing[0]}"
        if form["method"] != "interceptOrder":
            return "method 不正确"
        if form["key"] != self.key:
            return "key 不存在"
        expected = _md5(form["param"] + form["t"] + self.key + self.secret)
        if form["sign"] != expected:
            self.bad_signatures += 1
            return "签名错误"
        try:
            sent = datetime.fromtimestamp(int(form["t"]) / 1000, UTC)
        except ValueError:
            return "t 不正确"
        if abs((sent - self.now()).total_seconds()) > self.max_skew_s:
            return "t 已过期"
        try:
            param = json.loads(form["param"])
        except ValueError:
            return "param 不是 JSON"
        if not isinstance(param, dict):
            return "param 不是 JSON 对象"
        for name in ("kuaidicom", "kuaidinum", "interceptType", "partnerId"):
            if not param.get(name):
                return f"缺少参数 {name}"
        if param["interceptType"] not in INTERCEPT_TYPES:
            return "interceptType 不正确"
        if param["interceptType"] == "MODIFY_ADDR" and not param.get("recManInfo"):
            return "改址需要 recManInfo"
        return None

    def result_form(
        self, waybill: str, status: str, message: str = "", *, fields: dict[str, str] | None = None
    ) -> tuple[str, dict[str, str]]:
        """The callback for the last intercept of `waybill`: (its callbackUrl, the form)."""
        made = next(i for i in reversed(self.intercepts) if i.param["kuaidinum"] == waybill)
        names = {"company": "kuaidicom", "tracking_no": "kuaidinum", "status": "status"}
        names |= {"detail": "message"} | (fields or {})
        body = {
            names["company"]: made.param["kuaidicom"],
            names["tracking_no"]: waybill,
            names["status"]: status,
            names["detail"]: message,
            "taskId": made.task_id,
        }
        param = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        form = {"param": param}
        salt = str(made.param.get("salt") or "")
        if salt:
            form["sign"] = _md5(param + salt)
        return str(made.param.get("callbackUrl") or ""), form

    async def send_result(
        self, session: aiohttp.ClientSession, waybill: str, status: str, message: str = ""
    ) -> tuple[int, str]:
        """Post the result callback to the intercept's callbackUrl; (HTTP status, body)."""
        url, form = self.result_form(waybill, status, message)
        async with session.post(url, data=form) as resp:
            return resp.status, await resp.text()

    def param(
        self,
        com: str,
        nu: str,
        state: str,
        scans: list[tuple[datetime, str, str]],
        *,
        status: str = "polling",
    ) -> str:
        """The push JSON; `scans` are (time, state, context), any order."""
        ordered = sorted(scans, key=lambda s: s[0], reverse=True)
        data = [
            {
                "context": context,
                "time": f"{at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}",
                "ftime": f"{at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}",
                "status": STATE_NAMES.get(scan_state, "在途"),
                "areaCode": None,
                "areaName": None,
            }
            for at, scan_state, context in ordered
        ]
        return json.dumps(
            {
                "status": "shutdown" if state == "3" else status,
                "billstatus": "got",
                "message": "",
                "autoCheck": "0",
                "comOld": "",
                "comNew": "",
                "lastResult": {
                    "message": "ok",
                    "state": state,
                    "status": "200",
                    "condition": "F00",
                    "ischeck": "1" if state == "3" else "0",
                    "com": com,
                    "nu": nu,
                    "data": data,
                },
            },
            ensure_ascii=False,
        )

    def form(
        self,
        com: str,
        nu: str,
        state: str,
        scans: list[tuple[datetime, str, str]],
        *,
        status: str = "polling",
    ) -> dict[str, str]:
        param = self.param(com, nu, state, scans, status=status)
        return {"param": param, "sign": sign(param, self.salt)}

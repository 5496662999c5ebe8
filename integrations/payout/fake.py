"""FakeAlipay: the open-platform gateway's two fund-transfer methods, for tests and the demo.

It checks the RSA2 signature, app id and timestamp of every call, makes at most one order per
`out_biz_no` (a repeat gets the first answer), signs its answers with its own key, and
records what it received. Knobs refuse payees, answer "busy", leave orders DEALING, and
lose answers after acting (dropped connection, timeout or a 502 from a proxy).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from integrations.payout import signing
from integrations.payout.client import BEIJING
from integrations.payout.models import BIZ_SCENE, PRODUCT_CODE, QUERY, TRANSFER, TransferBiz

COMMON = ("app_id", "method", "charset", "sign_type", "timestamp", "version", "biz_content")


@dataclass
class Order:
    out_biz_no: str
    biz: dict[str, Any]
    order_id: str
    pay_fund_order_id: str
    status: str
    trans_date: str
    queries_until_done: int = 0


@dataclass
class FakeAlipay:
    app_id: str
    app_public_key: rsa.RSAPublicKey
    private_key: rsa.RSAPrivateKey
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_skew_s: float = 900.0
    lose_next: int = 0
    lose_how: Literal["disconnect", "timeout", "gateway"] = "disconnect"
    hang_s: float = 1.0
    busy_next: int = 0
    dealing_next: int = 0
    refuse: dict[str, tuple[str, str]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    bad_signatures: int = 0
    mismatched_repeats: int = 0
    _serial: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/gateway.do", self.handle)
        return app

    @property
    def public_key(self) -> str:
        """Alipay's public key as the console shows it (`[payout] alipay_public_key`)."""
        return signing.bare_public_key(self.private_key.public_key())

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [r["biz"] for r in self.requests if r["method"] == method]

    def paid(self) -> list[Order]:
        """Orders that moved money (once per out_biz_no, whatever was repeated)."""
        return [o for o in self.orders.values() if o.status == "SUCCESS"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = {k: str(v) for k, v in (await request.post()).items()}
        params = {**dict(request.query.items()), **params}
        method = params.get("method", "")
        key = f"{method.replace('.', '_')}_response" if method in (TRANSFER, QUERY) else ""
        problem = self._check(params)
        if problem is not None:
            sub_code, sub_msg = problem
            if sub_code == "isv.invalid-signature":
                self.bad_signatures += 1
            body = {"code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code}
            return self._answer(key or "error_response", body | {"sub_msg": sub_msg}, sign=False)
        biz = json.loads(params["biz_content"])
        self.requests.append({"method": method, "biz": biz})
        if self.busy_next > 0:
            self.busy_next -= 1
            busy = {"code": "20000", "msg": "Service Currently Unavailable"}
            return self._answer(key, busy | {"sub_code": "isp.unknow-error", "sub_msg": "系统繁忙"})
        body = self._transfer(biz) if method == TRANSFER else self._query(biz)
        if self.lose_next > 0:
            self.lose_next -= 1
            return await self._lose(request, key, body)
        return self._answer(key, body)

    def _check(self, params: dict[str, str]) -> tuple[str, str] | None:
        missing = [k for k in (*COMMON, "sign") if not params.get(k)]
        if missing:
            return f"isv.missing-{missing[0].replace('_', '-')}", f"缺少参数 {missing[0]}"
        if params["method"] not in (TRANSFER, QUERY):
            return "isv.invalid-method", "不存在的方法名"
        if params["app_id"] != self.app_id:
            return "isv.invalid-app-id", "无效的AppID参数"
        if params["sign_type"] != "RSA2" or params["charset"].lower() != "utf-8":
            return "isv.invalid-signature-type", "无效的签名类型"
        try:
            sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=BEIJING
            )
        except ValueError:
            return "isv.invalid-timestamp", "非法的时间戳参数"
        skew = abs((sent - self.now()).total_seconds())
        if skew > self.max_skew_s:
            return "isv.invalid-timestamp", "非法的时间戳参数"
        if not signing.verify(self.app_public_key, signing.canonical(params), params["sign"]):
            return (
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
            )
        return None

    def _transfer(self, biz: dict[str, Any]) -> dict[str, Any]:
        try:
            order = TransferBiz.model_validate(biz)
        except ValidationError as exc:
            field_name = ".".join(str(p) for p in exc.errors()[0]["loc"])
            return _refusal("40002", "isv.invalid-parameter", f"参数有误 {field_name}")
        if order.product_code != PRODUCT_CODE or order.biz_scene != BIZ_SCENE:
            return _refusal("40004", "PRODUCT_NOT_SIGNED", "产品未签约")
        made = self.orders.get(order.out_biz_no)
        if made is not None:
            if made.biz != biz:
                self.mismatched_repeats += 1
            return self._made(made)
        payee = order.payee_info
        if payee.identity in self.refuse:
            sub_code, sub_msg = self.refuse[payee.identity]
            return _refusal("40004", sub_code, sub_msg)
        if payee.identity_type == "ALIPAY_LOGON_ID" and not payee.name:
            return _refusal("40004", "PAYEE_USER_INFO_ERROR", "收款方姓名不能为空")
        self._serial += 1
        dealing = self.dealing_next > 0
        self.dealing_next -= 1 if dealing else 0
        stamp = self.now().astimezone(BEIJING)
        made = Order(
            out_biz_no=order.out_biz_no,
            biz=biz,
            order_id=f"{stamp:%Y%m%d}11007000{self._serial:014d}",
            pay_fund_order_id=f"{stamp:%Y%m%d}11007001{self._serial:014d}",
            status="DEALING" if dealing else "SUCCESS",
            trans_date=f"{stamp:%Y-%m-%d %H:%M:%S}",
            queries_until_done=1 if dealing else 0,
        )
        self.orders[order.out_biz_no] = made
        return self._made(made)

    def _made(self, order: Order) -> dict[str, Any]:
        return {
            "code": "10000",
            "msg": "Success",
            "out_biz_no": order.out_biz_no,
            "order_id": order.order_id,
            "pay_fund_order_id": order.pay_fund_order_id,
            "status": order.status,
            "trans_date": order.trans_date,
        }

    def _query(self, biz: dict[str, Any]) -> dict[str, Any]:
        made = self.orders.get(str(biz.get("out_biz_no", "")))
        if made is None:
            return _refusal("40004", "ORDER_NOT_EXIST", "转账订单不存在")
        if made.status == "DEALING":
            made.queries_until_done -= 1
            if made.queries_until_done < 0:
                made.status = "SUCCESS"
        return {
            "code": "10000",
            "msg": "Success",
            "order_id": made.order_id,
            "pay_fund_order_id": made.pay_fund_order_id,
            "out_biz_no": made.out_biz_no,
            "trans_amount": made.biz["trans_amount"],
            "status": made.status,
            "pay_date": made.trans_date,
        }

    def _answer(self, key: str, body: dict[str, Any], *, sign: bool = True) -> web.Response:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        signature = f',"sign":"{signing.sign(self.private_key, raw)}"' if sign else ""
        return web.Response(
            text=f'{{"{key}":{raw}{signature}}}', content_type="application/json", charset="utf-8"
        )

    async def _lose(self, request: web.Request, key: str, body: dict[str, Any]) -> web.Response:
        if self.lose_how == "gateway":
            return web.Response(status=502, text="Bad Gateway")
        if self.lose_how == "timeout":
            await asyncio.sleep(self.hang_s)
            return self._answer(key, body)
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)


def _refusal(code: str, sub_code: str, sub_msg: str) -> dict[str, Any]:
    msg = {"40002": "Invalid Arguments", "40004": "Business Failed"}.get(code, "Failed")
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}

"""FakeJushuitan: the 聚水潭 open-platform paths refundops uses, for tests and the demo.

Written from the docs (docId=70 签名规则, docType=4&docId=263 订单转异常, 订单查询, 退货退款
查询 docType=9&docId=38, docId=23/25 token) and the ieu/jst-java SDK, not from our client. It
checks every call's form (`access_token, app_key, biz, charset, timestamp, version, sign`),
the md5 signature (its own implementation), the timestamp (±15 min, code 140) and the token
(code 100); refresh tokens are single-use and a refresh retires the old access token. First
authorisation: a merchant's own app (`self_built`) gets its tokens from getInitToken with a
6-character code it makes up, each code taken once; a 服务商 app is refused there (21024) and
exchanges the code the merchant's authorisation page gave (`authorize`, 15 minutes, once) at
accessToken. Either grant retires the tokens issued before it. Orders
move between 待审核/已审核/发货中/已发货/异常/取消; 转异常 refuses shipped, cancelled and
unknown orders one by one in `data.message`, as the SDK's answer model describes. Limits:
≤50 orders per 转异常/cancel, ≤20 so_ids per order query, refund query windows ≤7 days and
page_size ≤50. Knobs fail the next calls (HTTP 5xx; a lost answer: JST acts and answers
after the client gave up; a vendor code), refuse multi-order calls as a whole, ship orders
(also just before the next 转异常 arrives), revoke the token. Business calls are recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMAT = "%Y-%m-%d %H:%M:%S"
COMMON = ("access_token", "app_key", "biz", "charset", "timestamp", "version", "sign")
REFRESH_FIELDS = ("app_key", "timestamp", "grant_type", "charset", "refresh_token", "scope", "sign")
GRANT_FIELDS = ("app_key", "timestamp", "grant_type", "charset", "code", "sign")
# getInitToken called by a 服务商 app (reported by an integrator who met it; not in the docs).
ONLY_SELF_BUILT = 21024
# How long an authorisation page's code can be exchanged (a CRMEB integration's note).
CODE_TTL = timedelta(minutes=15)
# A business refusal: the docs give no number for "bad business parameter" on these paths.
BUSINESS = 1

Status = Literal[
    "WaitPay", "WaitConfirm", "WaitFConfirm", "Delivering", "Question", "Sent", "Cancelled"
]
STATUS_TEXT = {
    "WaitPay": "待付款",
    "WaitConfirm": "待审核",
    "WaitFConfirm": "已审核",
    "Delivering": "发货中",
    "Question": "异常",
    "Sent": "已发货",
    "Cancelled": "取消",
}


def md5_sign(secret: str, params: dict[str, str]) -> str:
    text = secret + "".join(
        key + params[key] for key in sorted(params) if key != "sign" and params[key]
    )
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class FakeOrder:
    o_id: int
    so_id: str
    status: Status = "WaitConfirm"
    shop_id: int = 10001
    l_id: str = ""
    logistics_company: str = ""
    send_date: str = ""
    question_type: str = ""
    question_desc: str = ""
    modified: str = ""


@dataclass
class FakeRefund:
    as_id: int
    outer_as_id: str
    so_id: str
    o_id: int
    modified: datetime
    type: str = "仅退款"
    status: str = "WaitConfirm"
    shop_status: str = "WAIT_SELLER_AGREE"
    good_status: str = "BUYER_NOT_RECEIVED"
    order_status: str = "WaitConfirm"
    refund: str = "99.00"
    shop_id: int = 10001
    l_id: str = ""
    logistics_company: str = ""
    question_type: str = ""


@dataclass
class Failure:
    """`5xx`: a gateway error before JST acts; `timeout`: JST acts, the answer comes too late;
    `code`: JST answers this code (199/200 rate limits by default) without acting."""

    how: Literal["5xx", "timeout", "code"]
    code: int = 0
    msg: str = ""
    path: str = ""


@dataclass
class FakeJushuitan:
    app_key: str
    app_secret: str
    access_token: str = "jst-access-1"
    refresh_token: str = "jst-refresh-1"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_skew_s: float = 900.0
    hang_s: float = 2.0
    token_ttl_s: int = 30 * 24 * 3600
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    refunds: list[FakeRefund] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # One entry per order an 转异常 call moved into 异常 (or marked again).
    question_log: list[tuple[int, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # A multi-order 转异常/cancel call is refused as a whole with this (code, msg).
    refuse_batches: tuple[int, str] | None = None
    no_permission: set[str] = field(default_factory=set)
    # The warehouse sends these orders just before the next 转异常 call arrives (a race).
    ship_before_questions: set[str] = field(default_factory=set)
    refreshes: int = 0
    bad_signatures: int = 0
    # A merchant's own app (自研应用: getInitToken), else a 服务商 app (authorisation page).
    self_built: bool = True
    # Tokens issued by getInitToken / accessToken; codes the authorisation page handed out.
    grants: list[str] = field(default_factory=list)
    page_codes: dict[str, datetime] = field(default_factory=dict)
    _used_refresh: set[str] = field(default_factory=set)
    _used_codes: set[str] = field(default_factory=set)
    _issued: int = 1
    _serial: int = 3000000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/openWeb/auth/refreshToken", self._refresh)
        app.router.add_post("/openWeb/auth/getInitToken", self._init_token)
        app.router.add_post("/openWeb/auth/accessToken", self._code_token)
        for path, handler in (
            ("/open/webapi/orderapi/questionorder/questions", self._questions),
            ("/open/jushuitan/orderbyoid/cancel", self._cancel),
            ("/open/orders/single/query", self._orders),
            ("/open/refund/single/query", self._refunds),
        ):
            app.router.add_post(path, self._business(path, handler))
        return app

    # -- knobs and builders -----------------------------------------------------------

    def add_order(self, so_id: str, status: Status = "WaitConfirm", **extra: Any) -> FakeOrder:
        self._serial += 1
        order = FakeOrder(self._serial, so_id, status, modified=self._stamp(), **extra)
        self.orders[order.o_id] = order
        return order

    def ship(self, so_id: str, l_id: str = "", company: str = "中通快递") -> None:
        """The warehouse sends the order's parcels (as a person in the ERP would)."""
        for order in self.by_so_id(so_id):
            order.status = "Sent"
            order.l_id = l_id or f"ZT{order.o_id}"
            order.logistics_company = company
            order.send_date = self._stamp()
            order.modified = self._stamp()

    def by_so_id(self, so_id: str) -> list[FakeOrder]:
        return [o for o in self.orders.values() if o.so_id == so_id]

    def fail_next(
        self,
        n: int = 1,
        how: Literal["5xx", "timeout", "code"] = "5xx",
        code: int = 199,
        msg: str = "",
        path: str = "",
    ) -> None:
        """Fail the next `n` business calls (only those to `path`, when given)."""
        self.failures += [Failure(how, code, msg, path) for _ in range(n)]

    def authorize(self) -> str:
        """The merchant approves a 服务商 app on its authorisation page: the code it hands over."""
        code = f"{secrets.randbelow(10**10):010d}"
        self.page_codes[code] = self.now()
        return code

    def revoke_token(self) -> None:
        """The access token stops working (expired or revoked); the refresh token still works."""
        self.access_token = ""

    def add_refund(self, **values: Any) -> FakeRefund:
        self._serial += 1
        values.setdefault("as_id", self._serial)
        values.setdefault("outer_as_id", f"AS{self._serial}")
        values.setdefault("o_id", 0)
        values.setdefault("modified", self.now())
        refund = FakeRefund(**values)
        self.refunds.append(refund)
        return refund

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r["biz"] for r in self.requests if r["path"] == path]

    # -- the wire ---------------------------------------------------------------------

    def _business(
        self, path: str, handler: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.StreamResponse:
            if request.content_type != "application/x-www-form-urlencoded":
                return _answer(BUSINESS, "Content-Type 须为 application/x-www-form-urlencoded")
            form = {k: str(v) for k, v in (await request.post()).items()}
            problem = self._check(form, COMMON)
            if problem is not None:
                return _answer(*problem)
            if not self.access_token or form["access_token"] != self.access_token:
                return _answer(100, "验证失败！无效的access_token或access_token已过期")
            if form["version"] != "2" or form["charset"] != "utf-8":
                return _answer(BUSINESS, "version 须为 2，charset 须为 utf-8")
            if path in self.no_permission:
                return _answer(190, "验证失败！无API权限，请申请API权限")
            try:
                biz = json.loads(form["biz"])
            except ValueError:
                return _answer(BUSINESS, "biz 不是合法的 JSON")
            if not isinstance(biz, dict):
                return _answer(BUSINESS, "biz 须为 JSON 对象")
            self.requests.append({"path": path, "biz": biz})
            failure = next((f for f in self.failures if f.path in ("", path)), None)
            if failure is None:
                return web.json_response(handler(biz))
            self.failures.remove(failure)
            if failure.how == "5xx":
                return web.Response(status=502, text="Bad Gateway")
            if failure.how == "timeout":
                answer = handler(biz)
                await asyncio.sleep(self.hang_s)
                return web.json_response(answer)
            return _answer(failure.code, failure.msg or "调用频次超过限制!请稍后再试")

        return serve

    def _check(self, form: dict[str, str], required: tuple[str, ...]) -> tuple[int, str] | None:
        missing = [k for k in required if not form.get(k)]
        if missing:
            return 130, f"缺少参数 {missing[0]}"
        if form["app_key"] != self.app_key:
            return BUSINESS, "app_key 不存在"
        if md5_sign(self.app_secret, form) != form["sign"]:
            self.bad_signatures += 1
            return 10, "验证失败！无效签名"
        try:
            sent = datetime.fromtimestamp(int(form["timestamp"]), UTC)
        except ValueError:
            return 140, "验证失败！无效的timestamp"
        if abs((sent - self.now()).total_seconds()) > self.max_skew_s:
            return 140, "验证失败！无效的timestamp，请求最大时间误差15分钟"
        return None

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        problem = self._check(form, REFRESH_FIELDS)
        if problem is not None:
            return _answer(*problem)
        if form["grant_type"] != "refresh_token" or form["scope"] != "all":
            return _answer(BUSINESS, "grant_type 须为 refresh_token，scope 须为 all")
        given = form["refresh_token"]
        if given in self._used_refresh or given != self.refresh_token:
            return _answer(BUSINESS, "refresh_token 无效或已使用")
        self._used_refresh.add(given)
        self.refreshes += 1
        return self._issue()

    async def _init_token(self, request: web.Request) -> web.StreamResponse:
        """getInitToken: a merchant's own app, authorised silently once approved; `code` is a
        6-character value the caller makes up (docId=23: 随机创建六位字符串)."""
        form, refused = await self._grant_form(request)
        if refused is not None:
            return refused
        if not self.self_built:
            return _answer(ONLY_SELF_BUILT, "仅支持自有应用")
        code = form["code"]
        if len(code) != 6:
            return _answer(BUSINESS, "code 须为六位随机字符串")
        if code in self._used_codes:
            return _answer(BUSINESS, "code 已使用，请重新生成")
        self._used_codes.add(code)
        self.grants.append("getInitToken")
        return self._issue()

    async def _code_token(self, request: web.Request) -> web.StreamResponse:
        """accessToken: a 服务商 app exchanges the code the authorisation page gave (docId=25)."""
        form, refused = await self._grant_form(request)
        if refused is not None:
            return refused
        issued = self.page_codes.pop(form["code"], None)
        if issued is None or self.now() - issued > CODE_TTL:
            return _answer(BUSINESS, "code 无效或已过期，请重新授权")
        self.grants.append("accessToken")
        return self._issue()

    async def _grant_form(self, request: web.Request) -> tuple[dict[str, str], web.Response | None]:
        if request.content_type != "application/x-www-form-urlencoded":
            return {}, _answer(BUSINESS, "Content-Type 须为 application/x-www-form-urlencoded")
        form = {k: str(v) for k, v in (await request.post()).items()}
        problem = self._check(form, GRANT_FIELDS)
        if problem is not None:
            return form, _answer(*problem)
        if form["grant_type"] != "authorization_code" or form["charset"] != "utf-8":
            return form, _answer(BUSINESS, "grant_type 须为 authorization_code，charset 须为 utf-8")
        return form, None

    def _issue(self) -> web.Response:
        """A new token pair; the pair issued before it stops working."""
        if self.refresh_token:
            self._used_refresh.add(self.refresh_token)
        self._issued += 1
        self.access_token = f"jst-access-{self._issued}"
        self.refresh_token = f"jst-refresh-{self._issued}"
        data = {
            "access_token": self.access_token,
            "expires_in": self.token_ttl_s,
            "refresh_token": self.refresh_token,
            "scope": "all",
        }
        return web.json_response({"code": 0, "msg": "执行成功", "data": data})

    # -- the APIs -----------------------------------------------------------------------

    def _questions(self, biz: dict[str, Any]) -> dict[str, Any]:
        o_ids, so_ids = biz.get("o_ids") or [], biz.get("so_ids") or []
        if not o_ids and not so_ids:
            return _body(BUSINESS, "o_ids 与 so_ids 不能同时为空")
        if len(o_ids) > 50 or len(so_ids) > 50:
            return _body(BUSINESS, "最大50个订单")
        if not biz.get("question_type"):
            return _body(BUSINESS, "question_type 不能为空")
        if self.refuse_batches is not None and len(o_ids) + len(so_ids) > 1:
            return _body(*self.refuse_batches)
        for racing in self.ship_before_questions:
            self.ship(racing, l_id=f"SF{racing}")
        self.ship_before_questions.clear()
        targets: list[tuple[Any, FakeOrder | None]] = [(i, self.orders.get(int(i))) for i in o_ids]
        for so_id in so_ids:
            targets += [(so_id, o) for o in self.by_so_id(str(so_id))] or [(so_id, None)]
        failed: list[dict[str, Any]] = []
        done = 0
        for given, order in targets:
            if order is None:
                failed.append({"id": given, "msg": "订单不存在"})
            elif order.status in ("Sent", "Cancelled"):
                text = STATUS_TEXT[order.status]
                failed.append({"id": order.o_id, "msg": f"订单状态为{text}，不能转异常"})
            else:
                order.status = "Question"
                order.question_type = str(biz["question_type"])
                order.question_desc = str(biz.get("question_desc", ""))
                order.modified = self._stamp()
                self.question_log.append((order.o_id, order.question_type))
                done += 1
        data = {"success": done, "fail": len(failed), "message": failed}
        return {"code": 0, "msg": "执行成功", "data": data}

    def _cancel(self, biz: dict[str, Any]) -> dict[str, Any]:
        o_ids = biz.get("o_ids") or []
        if not o_ids or len(o_ids) > 50:
            return _body(BUSINESS, "o_ids 须为 1..50 个内部单号")
        if not biz.get("cancel_type"):
            return _body(BUSINESS, "cancel_type 不能为空")
        if self.refuse_batches is not None and len(o_ids) > 1:
            return _body(*self.refuse_batches)
        orders = [self.orders.get(int(i)) for i in o_ids]
        for given, order in zip(o_ids, orders, strict=True):
            if order is None:
                return _body(BUSINESS, f"订单{given}不存在")
            if order.status == "Sent":
                return _body(BUSINESS, f"订单{given}已发货，不能取消")
        for order in orders:
            assert order is not None
            order.status = "Cancelled"
            order.modified = self._stamp()
        return {"code": 0, "msg": "执行成功", "data": ""}

    def _orders(self, biz: dict[str, Any]) -> dict[str, Any]:
        so_ids = [str(s) for s in biz.get("so_ids") or []]
        if not so_ids:
            return _body(BUSINESS, "线上单号与时间条件不能同时为空")
        if len(so_ids) > 20:
            return _body(BUSINESS, "线上单号最大限制20条")
        size, index = int(biz.get("page_size", 30)), int(biz.get("page_index", 1))
        if not 0 < size <= 100 or index < 1:
            return _body(BUSINESS, "page_size 最大100，page_index 从1开始")
        found = [o for o in self.orders.values() if o.so_id in so_ids]
        page = found[(index - 1) * size : index * size]
        rows = [
            {
                "o_id": o.o_id,
                "so_id": o.so_id,
                "status": o.status,
                "shop_id": o.shop_id,
                "l_id": o.l_id,
                "logistics_company": o.logistics_company,
                "send_date": o.send_date,
                "question_type": o.question_type,
                "question_desc": o.question_desc,
                "modified": o.modified,
            }
            for o in page
        ]
        return {
            "code": 0,
            "msg": "执行成功",
            "data": _pagination(index, size, len(found), rows, "orders"),
        }

    def _refunds(self, biz: dict[str, Any]) -> dict[str, Any]:
        try:
            begin = datetime.strptime(str(biz["modified_begin"]), FORMAT).replace(tzinfo=SHANGHAI)
            end = datetime.strptime(str(biz["modified_end"]), FORMAT).replace(tzinfo=SHANGHAI)
        except (KeyError, ValueError):
            return _body(BUSINESS, "修改起始时间和结束时间必须同时存在，格式 yyyy-MM-dd HH:mm:ss")
        if end < begin or end - begin > timedelta(days=7):
            return _body(BUSINESS, "时间间隔不能超过七天")
        size, index = int(biz.get("page_size", 30)), int(biz.get("page_index", 1))
        if not 0 < size <= 50 or index < 1:
            return _body(BUSINESS, "每页最大50条，page_index 从1开始")
        shop = biz.get("shop_id")
        found = sorted(
            (
                r
                for r in self.refunds
                if begin <= r.modified <= end and (shop is None or r.shop_id == int(shop))
            ),
            key=lambda r: (r.modified, r.as_id),
        )
        rows = [
            {
                "as_id": r.as_id,
                "outer_as_id": r.outer_as_id,
                "o_id": r.o_id,
                "so_id": r.so_id,
                "type": r.type,
                "status": r.status,
                "shop_status": r.shop_status,
                "good_status": r.good_status,
                "order_status": r.order_status,
                "refund": r.refund,
                "shop_id": r.shop_id,
                "l_id": r.l_id,
                "logistics_company": r.logistics_company,
                "question_type": r.question_type,
                "modified": r.modified.astimezone(SHANGHAI).strftime(FORMAT),
                "as_date": r.modified.astimezone(SHANGHAI).strftime(FORMAT),
            }
            for r in found[(index - 1) * size : index * size]
        ]
        return {
            "code": 0,
            "msg": "执行成功",
            "data": _pagination(index, size, len(found), rows, "datas"),
        }

    def _stamp(self) -> str:
        return self.now().astimezone(SHANGHAI).strftime(FORMAT)


def _pagination(index: int, size: int, total: int, rows: list[Any], key: str) -> dict[str, Any]:
    pages = (total + size - 1) // size
    return {
        "page_index": index,
        "page_size": size,
        "data_count": total,
        "page_count": pages,
        "has_next": index < pages,
        key: rows,
    }


def _body(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": None}


def _answer(code: int, msg: str) -> web.Response:
    return web.json_response(_body(code, msg))

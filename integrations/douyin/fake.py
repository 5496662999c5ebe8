"""FakeDouyin: the 抖店 open platform's after-sale APIs and its message push, for tests and the demo.

Written from the official Go SDK (request envelope and signature, `utils/sign_util.go`; message
tags, `message/*.go`) and the API docs, not from our client: the signature is recomputed here.
It checks app_key, method == path with '.', the sign (hmac-sha256 or md5), the token and its
expiry (40003), an IP allow-list (30002); keeps after-sales in a state machine over
`standard_aftersale_status` whose `update_time` grows on every change; `afterSale/operate`
takes ≤ 20 items all or nothing and checks each `update_time`. Knobs fail the next calls
(HTTP 5xx, code 20000, hang), revoke tokens, make ids manual-only (11001). Every change also
makes the tag message the platform would push; `push` delivers them signed and redelivers
until the receiver answers HTTP 200 with `{"code":0}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from aiohttp import web

# Codes as the platform answers them. STALE is not documented publicly: the docs only say a
# stale `update_time` is refused, so the fake picks a business code of its own for it.
OK = 10000
MANUAL_ONLY = 11001
WRONG_STATE = 20309541
STALE = 20309599
MAX_ITEMS = 20
MAX_SIZE = 100

OPEN = (6, 7, 8, 11, 27, 29)
# operate `type` → (after-sale types, statuses it applies in, status after). The enum is that
# of question-docs/93/2752 as integrators transcribed it (see connector.py).
OPERATIONS: dict[int, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    101: ((0,), (6, 27), 7),
    102: ((0,), (6,), 27),
    111: ((0,), (7, 11, 29), 12),
    112: ((0,), (11,), 29),
    121: ((0,), (6, 27), 12),
    201: ((1,), (6, 27), 12),
    202: ((1,), (6,), 27),
    401: ((2,), (6,), 12),
}
REJECTS = (102, 112, 202)
# The message each operation makes the platform push.
OPERATION_TAGS = {101: "202", 102: "205", 112: "205", 202: "204"}

DEFAULT_REASONS: list[dict[str, Any]] = [
    {"reject_reason_code": 1, "reason": "买家已收到货，商品无质量问题", "evidence_need": "N"},
    {"reject_reason_code": 2, "reason": "商品已发出，请买家拒收或收货后申请", "evidence_need": "N"},
    {"reject_reason_code": 3, "reason": "退回商品影响二次销售", "evidence_need": "Y"},
]


@dataclass
class Grant:
    access_token: str
    refresh_token: str
    expires_at: int
    revoked: bool = False


@dataclass
class AfterSale:
    aftersale_id: str
    order_id: str
    sku_order_id: str
    aftersale_type: int
    status: int
    refund_amount: int
    post_amount: int
    pay_amount: int
    reason: str
    reason_code: int
    apply_time: int
    update_time: int
    status_deadline: int
    tracking_no: str = ""
    company_code: str = ""
    company_name: str = ""
    logistics_state: int = 0
    return_tracking_no: str = ""
    return_company_code: str = ""
    return_company_name: str = ""
    got_pkg: int = 0
    refund_status: int = 1
    status_desc: str = ""
    intercepted: bool = False


@dataclass
class Delivery:
    url: str
    body: bytes
    status: int
    answer: str
    ok: bool


@dataclass
class FakeDouyin:
    app_key: str
    app_secret: str
    shop_id: str = "123456"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    token_ttl_s: int = 7 * 86400
    max_skew_s: float = 600.0
    allowed_ips: set[str] | None = None
    manual_ids: set[str] = field(default_factory=set)
    reject_reasons: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_REASONS))
    intercept_refusals: dict[str, tuple[int, str]] = field(default_factory=dict)
    fail_next: list[Literal["5xx", "20000", "timeout"]] = field(default_factory=list)
    hang_s: float = 1.0
    push_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    aftersales: dict[str, AfterSale] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    bad_signatures: int = 0
    # False: the merchant withdrew the app's authorisation (no new token can be created).
    authorized: bool = True
    _pending: list[dict[str, str]] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last_update: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{path:.+}", self.handle)
        return app

    # -- tokens ---------------------------------------------------------------------

    def grant(
        self, access_token: str = "", refresh_token: str = "", ttl_s: int | None = None
    ) -> Grant:
        n = next(self._serial)
        made = Grant(
            access_token=access_token or f"at-{n:06d}",
            refresh_token=refresh_token or f"rt-{n:06d}",
            expires_at=self._seconds() + (self.token_ttl_s if ttl_s is None else ttl_s),
        )
        self.grants[made.access_token] = made
        return made

    def revoke_all(self, *, deauthorize: bool = False) -> None:
        for made in self.grants.values():
            made.revoked = True
        if deauthorize:
            self.authorized = False

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r["params"] for r in self.requests if r["path"] == path]

    # -- after-sales and the messages they make ---------------------------------------

    def new_aftersale(
        self,
        *,
        aftersale_type: int = 1,
        amount: int = 1990,
        post_amount: int = 0,
        pay_amount: int | None = None,
        reason: str = "不想要了",
        reason_code: int = 1,
        tracking_no: str = "",
        company_code: str = "",
        company_name: str = "",
        deadline_s: int = 48 * 3600,
        update_time: int | None = None,
        message: bool = True,
        delivered: bool = False,
    ) -> str:
        """A buyer's new after-sale awaiting the merchant (status 6); tag 200."""
        n = next(self._serial)
        now = self._tick() if update_time is None else update_time
        made = AfterSale(
            aftersale_id=str(7300000000000000000 + n),
            order_id=str(4900000000000000000 + n),
            sku_order_id=str(4900000000000000000 + n + 1),
            aftersale_type=aftersale_type,
            status=6,
            refund_amount=amount,
            post_amount=post_amount,
            pay_amount=pay_amount if pay_amount is not None else amount + post_amount,
            reason=reason,
            reason_code=reason_code,
            apply_time=now,
            update_time=now,
            status_deadline=now + deadline_s,
            tracking_no=tracking_no,
            company_code=company_code,
            company_name=company_name,
        )
        if delivered:  # the buyer signed for the parcel (order_logistics_state 2)
            made.logistics_state, made.got_pkg = 2, 1
        self.aftersales[made.aftersale_id] = made
        if message:
            self._emit("200", made, apply_time=made.apply_time)
        return made.aftersale_id

    def modify(
        self, aftersale_id: str, *, amount: int | None = None, reason: str | None = None
    ) -> None:
        """The buyer changes the application: tag 208."""
        made = self.aftersales[aftersale_id]
        made.refund_amount = made.refund_amount if amount is None else amount
        made.reason = made.reason if reason is None else reason
        self._touch(made)
        self._emit("208", made, modify_time=made.update_time)

    def buyer_returns(
        self, aftersale_id: str, *, tracking_no: str, company_code: str, company_name: str = ""
    ) -> None:
        """The buyer ships the goods back (status 7 → 11): tag 203."""
        made = self.aftersales[aftersale_id]
        made.return_tracking_no, made.return_company_code = tracking_no, company_code
        made.return_company_name = company_name or company_code
        made.status = 11
        self._touch(made)
        self._emit("203", made, return_time=made.update_time)

    def succeed(self, aftersale_id: str) -> None:
        """The refund went through (status 12): tag 206."""
        made = self.aftersales[aftersale_id]
        made.status, made.refund_status = 12, 3
        self._touch(made)
        self._emit("206", made, success_time=made.update_time)

    def close(self, aftersale_id: str, *, by_buyer: bool = True) -> None:
        """The after-sale ends without a refund (status 28): tag 207."""
        made = self.aftersales[aftersale_id]
        made.status = 28
        made.status_desc = "买家撤销申请" if by_buyer else "售后关闭"
        self._touch(made)
        self._emit("207", made, close_time=made.update_time)

    def change_deadline(self, aftersale_id: str, deadline: int) -> None:
        """The platform moves the deadline: tag 209 (its body has no update_time)."""
        made = self.aftersales[aftersale_id]
        made.status_deadline = deadline
        self._touch(made)
        body = self._base(made) | {"status_deadline": deadline}
        self._queue("209", body)

    def ship(
        self, aftersale_id: str, *, tracking_no: str, company_code: str, company_name: str = ""
    ) -> None:
        """The merchant's parcel gets (new) tracking: trade tag 104 on the order."""
        made = self.aftersales[aftersale_id]
        made.tracking_no, made.company_code = tracking_no, company_code
        made.company_name = company_name or company_code
        made.logistics_state = made.logistics_state or 0
        self._touch(made)
        body = {
            "p_id": int(made.order_id),
            "s_ids": [int(made.sku_order_id)],
            "shop_id": int(self.shop_id),
            "order_status": 3,
            "order_type": 0,
            "biz": 1,
            "update_time": made.update_time,
            "logistics_msg": {"express_company_id": company_code, "logistics_code": tracking_no},
        }
        self._queue("104", body)

    def parcel_returning(self, aftersale_id: str) -> None:
        """The carrier turned the parcel back (order_logistics_state 3, includes a successful
        intercept). No message is documented for it: pull sees the new update_time."""
        made = self.aftersales[aftersale_id]
        made.logistics_state = 3
        self._touch(made)

    def pending_messages(self) -> list[dict[str, str]]:
        return list(self._pending)

    async def flush(self, url: str = "", **kwargs: Any) -> bool:
        """Push every pending message to `url` (or `push_url`) in one array."""
        messages, self._pending = self._pending, []
        if not messages:
            return True
        if await self.push(url or self.push_url, messages, **kwargs):
            return True
        self._pending = messages + self._pending  # the platform redelivers them later
        return False

    async def push(
        self,
        url: str,
        messages: list[dict[str, str]],
        *,
        attempts: int = 3,
        session: aiohttp.ClientSession | None = None,
    ) -> bool:
        """POST the array with `event-sign`; anything but HTTP 200 + {"code":0} is redelivered."""
        body = json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()
        sign = hashlib.md5(self.app_key.encode() + body + self.app_secret.encode()).hexdigest()
        headers = {"Content-Type": "application/json", "event-sign": sign, "app-id": self.app_key}
        own = session is None
        http = session or aiohttp.ClientSession()
        try:
            for _ in range(attempts):
                status, text = 0, ""
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        status, text = resp.status, await resp.text()
                except aiohttp.ClientError as exc:
                    text = type(exc).__name__
                ok = status == 200 and _acked(text)
                self.deliveries.append(Delivery(url, body, status, text, ok))
                if ok:
                    return True
            return False
        finally:
            if own:
                await http.close()

    # -- the API ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        body = await request.text()
        query = dict(request.query.items())
        record: dict[str, Any] = {"path": path, "query": query, "ip": request.remote or ""}
        self.requests.append(record)
        if self.fail_next:
            how = self.fail_next.pop(0)
            if how == "5xx":
                return web.Response(status=502, text="Bad Gateway")
            if how == "timeout":
                await asyncio.sleep(self.hang_s)
            if how == "20000":
                return _answer(20000, "服务不可用", "dop.service-error", "服务调用失败，请稍后重试")
        problem = self._check(path, query, body, request.remote or "")
        if problem is not None:
            return problem
        params = json.loads(body) if body else {}
        record["params"] = params
        handler = self._routes().get(path)
        if handler is None:
            return _answer(70000, "接口服务已下线", "isp.api-service-off", "API不存在或API已下线")
        if path.startswith("token/"):
            return handler(params)
        grant = self.grants.get(query.get("access_token", ""))
        if grant is None or grant.revoked:
            return _answer(40003, "非法的参数", "isv.access-token-no-existed", "access_token不存在")
        if grant.expires_at <= self._seconds():
            return _answer(40003, "非法的参数", "isv.access-token-expired", "access_token已过期")
        return handler(params)

    def _routes(self) -> dict[str, Callable[[dict[str, Any]], web.Response]]:
        return {
            "token/create": self._token_create,
            "token/refresh": self._token_refresh,
            "afterSale/Detail": self._detail,
            "afterSale/List": self._list,
            "afterSale/operate": self._operate,
            "afterSale/rejectReasonCodeList": self._reasons,
            "afterSale/applyLogisticsIntercept": self._intercept,
        }

    def _check(self, path: str, query: dict[str, str], body: str, ip: str) -> web.Response | None:
        if self.allowed_ips is not None and ip not in self.allowed_ips:
            return _answer(30002, "IP不在白名单", "isv.invalid_ip", f"IP {ip} 不在白名单中")
        for name in ("app_key", "method", "timestamp", "v", "sign", "sign_method"):
            if not query.get(name):
                return _answer(40001, "缺少必选参数", "isv.parameter-missing", f"缺少参数 {name}")
        if query["app_key"] != self.app_key:
            return _answer(40003, "非法的参数", "isv.app-id-invalid", "认证失败，app_key不存在")
        if query["method"] != path.replace("/", "."):
            return _answer(40003, "非法的参数", "isv.parameter-invalid", "method 与路径不符")
        if (
            not query["timestamp"].isdigit()
            or abs(int(query["timestamp"]) - self._seconds()) > self.max_skew_s
        ):
            return _answer(40003, "非法的参数", "isv.timestamp-invalid", "时间戳不合法")
        secret = self.app_secret
        plain = (
            f"{secret}app_key{query['app_key']}method{query['method']}param_json{body}"
            f"timestamp{query['timestamp']}v{query['v']}{secret}"
        ).encode()
        if query["sign_method"] == "hmac-sha256":
            expected = hmac.new(secret.encode(), plain, hashlib.sha256).hexdigest()
        elif query["sign_method"] == "md5":
            expected = hashlib.md5(plain).hexdigest()
        else:
            return _answer(40003, "非法的参数", "isv.parameter-invalid", "sign_method 不支持")
        if not hmac.compare_digest(expected, query["sign"]):
            self.bad_signatures += 1
            return _answer(40003, "非法的参数", "isv.signature-invalid", "签名校验失败")
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return _answer(
                40003, "非法的参数", "isv.parameter-format-invalid", "业务参数json解析失败"
            )
        return None

    def _token_create(self, params: dict[str, Any]) -> web.Response:
        if (
            not self.authorized
            or params.get("grant_type") != "authorization_self"
            or str(params.get("shop_id")) != self.shop_id
        ):
            return _answer(
                50001,
                "平台处理失败",
                "dop.token-generate-failed:no-authorization",
                "店铺授权已失效",
            )
        return self._token_answer(self.grant())

    def _token_refresh(self, params: dict[str, Any]) -> web.Response:
        found = next(
            (g for g in self.grants.values() if g.refresh_token == params.get("refresh_token")),
            None,
        )
        if params.get("grant_type") != "refresh_token" or found is None or found.revoked:
            return _answer(
                50001,
                "平台处理失败",
                "dop.token-generate-failed:token-invalid",
                "生成token失败，token不存在",
            )
        found.revoked = True
        return self._token_answer(self.grant())

    def _token_answer(self, made: Grant) -> web.Response:
        return _answer(
            OK,
            "success",
            data={
                "access_token": made.access_token,
                "expires_in": made.expires_at - self._seconds(),
                "refresh_token": made.refresh_token,
                "scope": "SCOPE",
                "shop_id": int(self.shop_id),
                "shop_name": "测试店铺",
                "authority_id": self.shop_id,
                "auth_subject_type": "MiniApp",
            },
        )

    def _detail(self, params: dict[str, Any]) -> web.Response:
        made = self.aftersales.get(str(params.get("after_sale_id", "")))
        if made is None:
            return _business(20309501, "售后单不存在")
        logistics: dict[str, Any] = {"order": []}
        if made.tracking_no:
            logistics["order"].append(self._parcel(made))
        if made.return_tracking_no:
            logistics["return"] = {
                "tracking_no": made.return_tracking_no,
                "company_code": made.return_company_code,
                "company_name": made.return_company_name,
                "logistics_time": made.update_time,
            }
        data = {
            "process_info": {
                "after_sale_info": {
                    "after_sale_id": int(made.aftersale_id),
                    "after_sale_status": made.status,
                    "after_sale_status_desc": made.status_desc,
                    "after_sale_type": made.aftersale_type,
                    "refund_status": made.refund_status,
                    "refund_total_amount": made.refund_amount + made.post_amount,
                    "refund_post_amount": made.post_amount,
                    "apply_time": made.apply_time,
                    "update_time": made.update_time,
                    "reason": made.reason,
                    "reason_code": made.reason_code,
                    "got_pkg": made.got_pkg,
                    "status_deadline": made.status_deadline,
                },
                "logistics_info": logistics,
            },
            "order_info": {
                "shop_order_id": int(made.order_id),
                "sku_order_infos": [
                    {
                        "sku_order_id": int(made.sku_order_id),
                        "pay_amount": made.pay_amount,
                        "product_name": "商品",
                    }
                ],
            },
        }
        return _answer(OK, "success", data=data)

    def _parcel(self, made: AfterSale) -> dict[str, Any]:
        return {
            "tracking_no": made.tracking_no,
            "company_code": made.company_code,
            "company_name": made.company_name,
            "logistics_time": made.update_time,
            "logistics_state": made.logistics_state,
        }

    def _list(self, params: dict[str, Any]) -> web.Response:
        page, size = params.get("page", 0), params.get("size", 10)
        if (
            not isinstance(page, int)
            or page < 0
            or not isinstance(size, int)
            or not 0 < size <= MAX_SIZE
        ):
            return _answer(
                40003, "非法的参数", "isv.parameter-invalid", "page 从0开始，size 最多100"
            )
        start, end = params.get("update_start_time", 0), params.get("update_end_time", 2**62)
        found = sorted(
            (a for a in self.aftersales.values() if start <= a.update_time <= end),
            key=lambda a: (a.update_time, a.aftersale_id),
        )
        chosen = found[page * size : (page + 1) * size]
        items = [
            {
                "aftersale_info": {
                    "aftersale_id": a.aftersale_id,
                    "aftersale_type": a.aftersale_type,
                    "aftersale_status": a.status,
                    "related_id": a.sku_order_id,
                    "apply_time": a.apply_time,
                    "update_time": a.update_time,
                    "status_deadline": a.status_deadline,
                    "refund_amount": a.refund_amount,
                    "refund_post_amount": a.post_amount,
                    "refund_status": a.refund_status,
                    "return_logistics_code": a.return_tracking_no,
                    "return_logistics_company_name": a.return_company_name,
                    "got_pkg": a.got_pkg,
                    "order_logistics": [self._parcel(a)] if a.tracking_no else [],
                },
                "order_info": {
                    "shop_order_id": a.order_id,
                    "related_order_info": [
                        {"sku_order_id": a.sku_order_id, "pay_amount": a.pay_amount}
                    ],
                },
                "text_part": {"reason_text": a.reason},
            }
            for a in chosen
        ]
        more = (page + 1) * size < len(found)
        return _answer(
            OK,
            "success",
            data={
                "items": items,
                "has_more": more,
                "total": len(found),
                "page": page,
                "size": size,
            },
        )

    def _operate(self, params: dict[str, Any]) -> web.Response:
        op_type, items = params.get("type"), params.get("items")
        if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
            return _answer(
                40003, "非法的参数", "isv.parameter-invalid", f"items 为1到{MAX_ITEMS}个"
            )
        if op_type not in OPERATIONS:
            return _answer(40003, "非法的参数", "isv.parameter-invalid", "type 不支持")
        types, statuses, after = OPERATIONS[op_type]
        chosen: list[AfterSale] = []
        # All or nothing: every item is checked before any is applied.
        for item in items:
            made = self.aftersales.get(str(item.get("aftersale_id", "")))
            if made is None:
                return _business(20309501, "售后单不存在")
            if made.aftersale_id in self.manual_ids:
                return _business(MANUAL_ONLY, "暂不支持通过OPEN处理，请登录抖店后台人工审核")
            sent = item.get("update_time")
            if sent and sent != made.update_time:
                return _business(STALE, "售后单已更新，请使用最新的update_time")
            if made.aftersale_type not in types or made.status not in statuses:
                return _business(WRONG_STATE, "售后状态错误")
            if op_type == 101 and not (item.get("logistics") or {}).get("receiver_address_id"):
                return _answer(40003, "非法的参数", "isv.parameter-invalid", "同意退货需要退货地址")
            if op_type in REJECTS and not self._reject_ok(item):
                return _answer(
                    40003, "非法的参数", "isv.parameter-invalid", "拒绝需要原因码、原因和凭证"
                )
            chosen.append(made)
        for made in chosen:
            made.status = after
            self._touch(made)
            if after == 12:
                made.refund_status = 3
                self._emit("201", made, agree_time=made.update_time)
                self._emit("206", made, success_time=made.update_time)
            else:
                self._emit(OPERATION_TAGS[op_type], made, refuse_time=made.update_time)
        results = [
            {"aftersale_id": int(m.aftersale_id), "status_code": 0, "status_msg": "success"}
            for m in chosen
        ]
        return _answer(OK, "success", data={"items": results})

    def _reject_ok(self, item: dict[str, Any]) -> bool:
        reason = next(
            (
                r
                for r in self.reject_reasons
                if r["reject_reason_code"] == item.get("reject_reason_code")
            ),
            None,
        )
        if reason is None or not item.get("reason") or not item.get("remark"):
            return False
        return reason.get("evidence_need") != "Y" or bool(item.get("evidence"))

    def _reasons(self, params: dict[str, Any]) -> web.Response:  # noqa: ARG002
        return _answer(OK, "success", data={"items": self.reject_reasons})

    def _intercept(self, params: dict[str, Any]) -> web.Response:
        made = self.aftersales.get(str(params.get("after_sale_id", "")))
        targets = params.get("intercept_targets")
        if made is None:
            return _business(20309501, "售后单不存在")
        if params.get("op_from") not in (1, 3) or not isinstance(targets, list) or not targets:
            return _answer(
                40003, "非法的参数", "isv.parameter-invalid", "op_from 与 intercept_targets 必填"
            )
        results, failed, last = [], 0, (0, "")
        for target in targets:
            tracking = str(target.get("tracking_no", ""))
            refusal = self.intercept_refusals.get(tracking)
            if refusal is None and (tracking != made.tracking_no or not made.tracking_no):
                refusal = (2, "包裹不存在或不属于该订单")
            if refusal is None and made.logistics_state in (2, 3, 4):
                refusal = (3, "包裹已签收或已在退回中，无法拦截")
            ok = refusal is None
            if ok:
                made.intercepted = True
            else:
                failed += 1
                last = refusal or last
            results.append(
                {
                    "company_code": target.get("company_code", ""),
                    "tracking_no": tracking,
                    "is_success": ok,
                    "unavailable_reason_code": 0 if ok else last[0],
                    "unavailable_reason": "" if ok else last[1],
                }
            )
        data = {
            "intercept_results": results,
            "success_count": len(results) - failed,
            "failed_count": failed,
            "unavailable_reason_code": last[0],
            "unavailable_reason": last[1],
            "refund_amount": made.refund_amount,
        }
        return _answer(OK, "success", data=data)

    # -- helpers --------------------------------------------------------------------

    def _seconds(self) -> int:
        return int(self.now().timestamp())

    def _tick(self) -> int:
        self._last_update = max(self._seconds(), self._last_update + 1)
        return self._last_update

    def _touch(self, made: AfterSale) -> None:
        made.update_time = max(self._tick(), made.update_time + 1)

    def _base(self, made: AfterSale) -> dict[str, Any]:
        return {
            "aftersale_id": int(made.aftersale_id),
            "aftersale_status": made.status,
            "aftersale_type": made.aftersale_type,
            "p_id": int(made.order_id),
            "s_id": int(made.sku_order_id),
            "shop_id": int(self.shop_id),
        }

    def _emit(self, tag: str, made: AfterSale, **times: int) -> None:
        body = self._base(made) | {
            "reason_code": made.reason_code,
            "refund_amount": made.refund_amount,
            "refund_post_amount": made.post_amount,
            "refund_voucher_num": 0,
            "update_time": made.update_time,
            **times,
        }
        self._queue(tag, body)

    def _queue(self, tag: str, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        self._pending.append(
            {"tag": tag, "msg_id": f"{7400000000000000000 + next(self._serial)}", "data": data}
        )


def _acked(text: str) -> bool:
    try:
        answer = json.loads(text)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("code") == 0


def _answer(
    code: int, msg: str, sub_code: str = "", sub_msg: str = "", *, data: Any = None
) -> web.Response:
    body = {
        "code": code,
        "msg": msg,
        "sub_code": sub_code,
        "sub_msg": sub_msg,
        "log_id": "fake",
        "data": data or {},
    }
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _business(code: int, text: str) -> web.Response:
    return _answer(50002, "业务处理失败", f"isv.business-failed:{code}", text)

"""FakeTaobao: TOP's router/rest for the refund APIs and the TMC websocket, for tests and demos.

Written from the vendor material, not from our client: the signature is recomputed here
(docId=101617 rules), the timestamp must be within 10 minutes (opentaobao CommonRequest),
sessions are checked (27), and refunds live in a state machine whose `refund_version` (a ms
timestamp, as the API docs say) grows on every change; writes with a stale version are refused.
Write rules: Tmall needs rp.refund.review before rp.refunds.agree; agree only by a sub-account;
per call ≤20 refunds and ≤6000 yuan (Taobao), ≤30 and ≤10000 (Tmall); an SMS-code knob; Tmall
refusals need refuse_proof; refund.message.add ≤400 bytes. TMC: CONNECT checked (app_key,
timestamp, sign), a Token on CONNECTACK, PullRequest answered with queued messages, Confirm
removes, Failed and unconfirmed-after-`redeliver_s` messages go out again; a second CONNECT
for the same app_key+group kicks the first connection.

Codes we could not confirm in a source are defined here and named in `DEFINED_HERE`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web

from integrations.taobao import tmc

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_SKEW = timedelta(minutes=10)
LIMITS = {"taobao": (20, 600000), "tmall": (30, 1000000)}  # refunds per call, fen per call
SMS_NEEDED = "isv.refund-need-sms-code"
SMS_INVALID = "isv.refund-sms-code-invalid"
VERSION_STALE = "isv.refund-version-expired"
NOT_SUB_ACCOUNT = "isv.refund-agree-only-subaccount"
DEFINED_HERE = (SMS_NEEDED, SMS_INVALID, VERSION_STALE, NOT_SUB_ACCOUNT)
REASONS = [
    (1001, "买家未举证/举证无效"),
    (1002, "商品已影响二次销售"),
    (1003, "已与买家协商一致不退款"),
]
Failure = Literal["5xx", "limit", "timeout"]


def _fmt(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}"


def _expected_sign(params: dict[str, str], secret: str) -> str | None:
    body = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    method = params.get("sign_method", "")
    if method == "md5":
        return hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest().upper()
    if method == "hmac":
        return hmac.new(secret.encode(), body.encode(), "md5").hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(secret.encode(), body.encode(), "sha256").hexdigest().upper()
    return None


class RefusalError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(msg)
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


@dataclass
class FakeRefund:
    refund_id: int
    tid: int
    oid: int
    buyer_nick: str
    refund_fee_fen: int
    total_fee_fen: int
    bill_type: str
    has_good_return: bool
    refund_phase: str
    order_status: str
    good_status: str
    status: str
    created: datetime
    modified: datetime
    version: int
    reason: str = "不想要了"
    desc: str = ""
    company_name: str = ""
    sid: str = ""
    reviewed: bool = False
    intercepted: bool = False
    timeout: datetime | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)

    def view(self, fields: str) -> dict[str, Any]:
        dispute = {"refund_bill": "REFUND", "return_bill": "REFUND_AND_RETURN"}
        full: dict[str, Any] = {
            "refund_id": str(self.refund_id),
            "tid": self.tid,
            "oid": self.oid,
            "buyer_nick": self.buyer_nick,
            "total_fee": f"{self.total_fee_fen / 100:.2f}",
            "payment": f"{self.total_fee_fen / 100:.2f}",
            "refund_fee": f"{self.refund_fee_fen / 100:.2f}",
            "status": self.status,
            "created": _fmt(self.created),
            "modified": _fmt(self.modified),
            "good_status": self.good_status,
            "has_good_return": self.has_good_return,
            "reason": self.reason,
            "desc": self.desc,
            "company_name": self.company_name,
            "sid": self.sid,
            "refund_phase": self.refund_phase,
            "refund_version": self.version,
            "order_status": self.order_status,
            "dispute_type": dispute.get(self.bill_type, "TMALL_EXCHANGE"),
            "refund_remind_timeout": {
                "exist_timeout": self.timeout is not None,
                "timeout": _fmt(self.timeout) if self.timeout else "",
                "remind_type": 1,
            },
        }
        wanted = {f.strip() for f in fields.split(",")}
        return {k: v for k, v in full.items() if k in wanted and v != ""}


@dataclass
class Queued:
    id: int
    topic: str
    content: str
    nick: str
    sent_at: float | None = None


@dataclass
class Connection:
    ws: web.WebSocketResponse
    token: str
    group: str


@dataclass
class FakeTaobao:
    app_key: str
    app_secret: str
    now: Callable[[], datetime]
    platform: Literal["taobao", "tmall"] = "taobao"
    seller_nick: str = "好物旗舰店"
    sessions: dict[str, bool] = field(default_factory=dict)  # access token → is a sub-account
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh → access token
    require_sms: bool = False
    # True: messages reach the app only for sellers it called taobao.tmc.user.permit for.
    require_permit: bool = False
    permitted: set[str] = field(default_factory=set)
    forbidden: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    fail_next: list[Failure] = field(default_factory=list)
    hang_s: float = 1.0
    redeliver_s: float = 30.0
    batch: int = 32
    refunds: dict[int, FakeRefund] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    sms_sent: list[str] = field(default_factory=list)
    queue: dict[int, Queued] = field(default_factory=dict)
    confirms: list[int] = field(default_factory=list)
    nacks: list[tuple[int, str]] = field(default_factory=list)
    connects: list[dict[str, Any]] = field(default_factory=list)
    kicked: int = 0
    connections: dict[str, Connection] = field(default_factory=dict)
    _sms_open: str | None = None
    _serial: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/router/rest", self.rest)
        app.router.add_get("/tmc", self.channel)
        return app

    # -- helpers for tests --------------------------------------------------------------

    def grant(
        self, access_token: str, refresh_token: str = "", *, sub_account: bool = True
    ) -> None:
        self.sessions[access_token] = sub_account
        if refresh_token:
            self.refresh_tokens[refresh_token] = access_token

    def revoke(self, access_token: str) -> None:
        self.sessions.pop(access_token, None)
        self.refresh_tokens = {r: a for r, a in self.refresh_tokens.items() if a != access_token}

    def calls(self, method: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("method") == method]

    def _next_id(self) -> int:
        self._serial += 1
        return self._serial

    def _touch(self, refund: FakeRefund) -> None:
        at = self.now()
        refund.modified = max(at, refund.modified + timedelta(seconds=1))
        refund.version = max(refund.version + 1, int(refund.modified.timestamp() * 1000))

    def publish(self, topic: str, content: dict[str, Any], user_nick: str = "") -> int:
        """Queue a message for the app; with `require_permit`, only for a permitted seller (as
        TMC sends a user's messages only after taobao.tmc.user.permit)."""
        if self.require_permit and (user_nick or self.seller_nick) not in self.permitted:
            return 0
        message_id = 7_000_000_000_000 + self._next_id()
        self.queue[message_id] = Queued(
            message_id,
            topic,
            json.dumps(content, ensure_ascii=False),
            user_nick or self.seller_nick,
        )
        return message_id

    def _publish_refund(self, topic: str, refund: FakeRefund) -> int:
        return self.publish(
            f"taobao_refund_{topic}",
            {
                "bill_type": refund.bill_type,
                "buyer_nick": refund.buyer_nick,
                "modified": _fmt(refund.modified),
                "oid": refund.oid,
                "refund_fee": f"{refund.refund_fee_fen / 100:.2f}",
                "refund_id": refund.refund_id,
                "refund_phase": refund.refund_phase,
                "seller_nick": self.seller_nick,
                "tid": refund.tid,
            },
        )

    def new_refund(
        self,
        *,
        amount_fen: int = 1990,
        order_fen: int = 5970,
        bill_type: str = "refund_bill",
        shipped: bool = True,
        received: bool = False,
        buyer_nick: str = "t**1",
        reason: str = "不想要了",
        publish: bool = True,
    ) -> str:
        at = self.now()
        serial = self._next_id()
        refund = FakeRefund(
            refund_id=200_000_000_000 + serial,
            tid=300_000_000_000 + serial,
            oid=300_000_000_000 + serial,
            buyer_nick=buyer_nick,
            refund_fee_fen=amount_fen,
            total_fee_fen=order_fen,
            bill_type=bill_type,
            has_good_return=bill_type == "return_bill",
            refund_phase="aftersale" if shipped else "onsale",
            order_status="WAIT_BUYER_CONFIRM_GOODS" if shipped else "WAIT_SELLER_SEND_GOODS",
            good_status=("BUYER_RECEIVED" if received else "BUYER_NOT_RECEIVED" if shipped else ""),
            status="WAIT_SELLER_AGREE",
            created=at,
            modified=at,
            version=int(at.timestamp() * 1000),
            reason=reason,
            timeout=at + timedelta(days=2),
        )
        self.refunds[refund.refund_id] = refund
        if publish:
            self._publish_refund("RefundCreated", refund)
        return str(refund.refund_id)

    def move(self, refund_id: str, status: str, topic: str, **changes: Any) -> None:
        refund = self.refunds[int(refund_id)]
        refund.status = status
        for name, value in changes.items():
            setattr(refund, name, value)
        if status not in ("WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS"):
            refund.timeout = None
        self._touch(refund)
        self._publish_refund(topic, refund)

    def agree_return(self, refund_id: str) -> None:
        self.move(refund_id, "WAIT_BUYER_RETURN_GOODS", "RefundSellerAgreeAgreement")

    def buyer_returns_goods(
        self, refund_id: str, company: str = "中通快递", sid: str = "ZT7788"
    ) -> None:
        timeout = self.now() + timedelta(days=10)
        self.move(
            refund_id,
            "WAIT_SELLER_CONFIRM_GOODS",
            "RefundBuyerReturnGoods",
            company_name=company,
            sid=sid,
            good_status="BUYER_RETURNED_GOODS",
            timeout=timeout,
        )

    def succeed(self, refund_id: str) -> None:
        self.move(refund_id, "SUCCESS", "RefundSuccess")

    def close(self, refund_id: str) -> None:
        self.move(refund_id, "CLOSED", "RefundClosed")

    def buyer_says(self, refund_id: str, text: str) -> None:
        refund = self.refunds[int(refund_id)]
        note = {
            "id": self._next_id(),
            "content": text,
            "created": _fmt(self.now()),
            "owner_role": "1",
            "owner_nick": refund.buyer_nick,
            "message_type": "NORMAL",
            "refund_id": refund_id,
        }
        refund.notes.append(note)
        self._publish_refund("RefundCreateMessage", refund)

    # -- REST ----------------------------------------------------------------------------

    async def rest(self, request: web.Request) -> web.StreamResponse:
        params = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(params)
        method = params.get("method", "")
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if failure == "5xx":
                return web.Response(status=502, text="Bad Gateway")
            if failure == "timeout":
                await asyncio.sleep(self.hang_s)
                return web.Response(status=504)
            return self._error(
                RefusalError(7, "App Call Limited", "accesscontrol.limited-by-api-access-count")
            )
        try:
            self._check(params)
            handler = self.METHODS.get(method)
            if handler is None:
                raise RefusalError(22, "Invalid Method")
            if method in self.forbidden:
                code, sub_code, sub_msg = self.forbidden[method]
                raise RefusalError(code, "Insufficient isv permissions", sub_code, sub_msg)
            body = handler(self, params)
        except RefusalError as refusal:
            return self._error(refusal)
        key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return web.json_response({key: {**body, "request_id": secrets.token_hex(6)}})

    @staticmethod
    def _error(refusal: RefusalError) -> web.Response:
        body = {k: v for k, v in refusal.body.items() if v != ""}
        return web.json_response({"error_response": {**body, "request_id": secrets.token_hex(6)}})

    def _check(self, params: dict[str, str]) -> None:
        for name, code in (
            ("method", 21),
            ("app_key", 28),
            ("timestamp", 30),
            ("sign", 24),
            ("v", 32),
        ):
            if not params.get(name):
                raise RefusalError(code, f"Missing {name}")
        if params["app_key"] != self.app_key:
            raise RefusalError(29, "Invalid app Key")
        try:
            sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=BEIJING
            )
        except ValueError as exc:
            raise RefusalError(31, "Invalid Timestamp") from exc
        if abs(sent - self.now()) > MAX_SKEW:
            raise RefusalError(
                31, "Invalid Timestamp", "isv.invalid-timestamp", "时间戳超出10分钟误差"
            )
        if params.get("format", "xml") != "json":
            raise RefusalError(23, "Invalid Format")
        expected = _expected_sign(params, self.app_secret)
        if expected is None or not hmac.compare_digest(expected, params["sign"]):
            self.bad_signatures += 1
            raise RefusalError(25, "Invalid signature")
        if params["method"] == "taobao.top.auth.token.refresh":
            return
        if not params.get("session"):
            raise RefusalError(26, "Missing session")
        if params["session"] not in self.sessions:
            raise RefusalError(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")

    def _refund(self, params: dict[str, str]) -> FakeRefund:
        try:
            refund = self.refunds.get(int(params.get("refund_id", "")))
        except ValueError as exc:
            raise RefusalError(41, "Invalid arguments:refund_id") from exc
        if refund is None:
            raise RefusalError(15, "Remote service error", "isv.refund-not-exist", "退款单不存在")
        return refund

    def _version(self, refund: FakeRefund, sent: str | None, *, required: bool) -> None:
        if sent is None and not required:
            return
        if sent != str(refund.version):
            raise RefusalError(
                15, "Remote service error", VERSION_STALE, "退款版本已过期，请刷新后重试"
            )

    def _m_refund_get(self, params: dict[str, str]) -> dict[str, Any]:
        return {"refund": self._refund(params).view(params.get("fields", ""))}

    def _m_refunds_receive_get(self, params: dict[str, str]) -> dict[str, Any]:
        size = int(params.get("page_size", "40"))
        page = int(params.get("page_no", "1"))
        if not 0 < size <= 100 or page < 1:
            raise RefusalError(41, "Invalid arguments:page_size")
        start = params.get("start_modified")
        end = params.get("end_modified")
        rows = sorted(self.refunds.values(), key=lambda r: (r.modified, r.refund_id))
        if start:
            rows = [r for r in rows if _fmt(r.modified) >= start]
        if end:
            rows = [r for r in rows if _fmt(r.modified) <= end]
        if params.get("status"):
            rows = [r for r in rows if r.status == params["status"]]
        chunk = rows[(page - 1) * size : page * size]
        body: dict[str, Any] = {
            "refunds": {"refund": [r.view(params.get("fields", "")) for r in chunk]}
        }
        if params.get("use_has_next") == "true":
            body["has_next"] = page * size < len(rows)
        else:
            body["total_results"] = len(rows)
        return body

    def _m_refund_refusereason_get(self, params: dict[str, str]) -> dict[str, Any]:
        self._refund(params)
        reasons = [{"reason_id": i, "reason_text": t, "reason_tips": t} for i, t in REASONS]
        return {"reasons": {"reason": reasons}, "total_results": len(reasons), "has_next": False}

    def _m_refund_messages_get(self, params: dict[str, str]) -> dict[str, Any]:
        refund = self._refund(params)
        return {
            "refund_messages": {"refund_message": list(refund.notes)},
            "total_results": len(refund.notes),
        }

    def _m_refund_message_add(self, params: dict[str, str]) -> dict[str, Any]:
        refund = self._refund(params)
        content = params.get("content", "")
        if not content:
            raise RefusalError(40, "Missing required arguments:content")
        if len(content.encode()) > 400:
            raise RefusalError(
                41, "Invalid arguments:content", "isv.invalid-parameter", "留言内容最大400个字节"
            )
        note = {
            "id": self._next_id(),
            "content": content,
            "created": _fmt(self.now()),
            "owner_role": "2",
            "owner_nick": self.seller_nick,
            "message_type": "NORMAL",
            "refund_id": str(refund.refund_id),
        }
        refund.notes.append(note)
        self._publish_refund("RefundCreateMessage", refund)
        return {"refund_message": {"id": note["id"], "created": note["created"]}}

    def _m_rp_refund_review(self, params: dict[str, str]) -> dict[str, Any]:
        if self.platform != "tmall":
            raise RefusalError(
                15, "Remote service error", "isv.refund-review-only-tmall", "目前仅支持天猫订单"
            )
        refund = self._refund(params)
        for name in ("operator", "refund_phase", "refund_version", "message", "result"):
            if not params.get(name):
                raise RefusalError(40, f"Missing required arguments:{name}")
        self._version(refund, params["refund_version"], required=True)
        refund.reviewed = params["result"] == "true"
        self._touch(refund)
        return {"is_success": True}

    def _m_rp_refunds_agree(self, params: dict[str, str]) -> dict[str, Any]:
        if not self.sessions.get(params["session"]):
            raise RefusalError(15, "Remote service error", NOT_SUB_ACCOUNT, "只允许子账号操作")
        infos = [i.split("|") for i in params.get("refund_infos", "").split(",") if i]
        if not infos:
            raise RefusalError(40, "Missing required arguments:refund_infos")
        most, cap = LIMITS[self.platform]
        try:
            total = sum(int(info[1]) for info in infos)
        except (IndexError, ValueError) as exc:
            raise RefusalError(41, "Invalid arguments:refund_infos") from exc
        if len(infos) > most or total > cap:
            raise RefusalError(
                41,
                "Invalid arguments:refund_infos",
                "isv.invalid-parameter",
                "超过单次退款笔数或金额上限",
            )
        if self.require_sms:
            code = params.get("code")
            if not code:
                self._sms_open = f"{secrets.randbelow(10**6):06d}"
                self.sms_sent.append(self._sms_open)
                raise RefusalError(
                    15,
                    "Remote service error",
                    SMS_NEEDED,
                    "退款需要短信验证码，验证码已发送到卖家手机",
                )
            if code != self._sms_open:
                raise RefusalError(
                    15, "Remote service error", SMS_INVALID, "短信验证码错误或已失效"
                )
            self._sms_open = None
        results = []
        for info in infos:
            results.append(self._agree_one(info))
        good = sum(1 for r in results if r["succ"])
        msg_code = (
            "OP_SUCC" if good == len(results) else "SOME_OP_SUCC" if good else "OP_FAILURE_UE"
        )
        return {
            "succ": good == len(results),
            "msg_code": msg_code,
            "message": "成功" if good else results[0]["message"],
            "results": {"refund_mapping_result": results},
        }

    def _agree_one(self, info: list[str]) -> dict[str, Any]:
        refund = self.refunds.get(int(info[0])) if info[0].isdigit() else None
        if refund is None:
            return {"refund_id": info[0], "succ": False, "message": "退款单不存在"}
        answer = {"refund_id": str(refund.refund_id), "succ": False}
        if len(info) < 3 or info[2] != str(refund.version):
            return answer | {"message": "退款版本号不一致(refund_version)，请刷新后重试"}
        if self.platform == "tmall" and (len(info) < 4 or info[3] != refund.refund_phase):
            return answer | {"message": "天猫退款必须传入正确的退款阶段"}
        if self.platform == "tmall" and not refund.reviewed:
            return answer | {"message": "退款单未审核"}
        if int(info[1]) != refund.refund_fee_fen:
            return answer | {"message": "退款金额不一致"}
        if refund.status not in (
            "WAIT_SELLER_AGREE",
            "WAIT_SELLER_CONFIRM_GOODS",
            "SELLER_REFUSE_BUYER",
        ):
            return answer | {"message": f"退款状态{refund.status}不允许同意"}
        self.move(str(refund.refund_id), "SUCCESS", "RefundSuccess")
        return answer | {"succ": True, "message": "succ"}

    def _m_refund_refuse(self, params: dict[str, str]) -> dict[str, Any]:
        refund = self._refund(params)
        message = params.get("refuse_message", "")
        if not 2 <= len(message) <= 200:
            raise RefusalError(
                41, "Invalid arguments:refuse_message", "isv.invalid-parameter", "拒绝说明长度2-200"
            )
        if self.platform == "tmall":
            for name in ("refund_phase", "refund_version", "refuse_proof"):
                if not params.get(name):
                    raise RefusalError(
                        40, f"Missing required arguments:{name}", f"isv.missing-parameter:{name}"
                    )
        self._version(refund, params.get("refund_version"), required=self.platform == "tmall")
        reason_id = params.get("refuse_reason_id")
        if reason_id and int(reason_id) not in {i for i, _ in REASONS}:
            raise RefusalError(41, "Invalid arguments:refuse_reason_id")
        if refund.status not in ("WAIT_SELLER_AGREE", "WAIT_SELLER_CONFIRM_GOODS"):
            raise RefusalError(
                15, "Remote service error", "isv.refund-status-not-support", "退款状态不允许拒绝"
            )
        self.move(str(refund.refund_id), "SELLER_REFUSE_BUYER", "RefundSellerRefuseAgreement")
        view = refund.view("refund_id,status,modified")
        return {"refund": view, "is_success": True}

    def _m_rp_refund_intercept(self, params: dict[str, str]) -> dict[str, Any]:
        refund = self._refund(params)
        self._version(refund, params.get("refund_version"), required=True)
        if (
            refund.order_status != "WAIT_BUYER_CONFIRM_GOODS"
            or refund.status != "WAIT_SELLER_AGREE"
        ):
            raise RefusalError(
                15,
                "Remote service error",
                "isv.refund-intercept-not-allowed",
                "当前退款不支持发起拦截",
            )
        refund.intercepted = True
        self._touch(refund)
        return {"is_success": True}

    def _m_top_auth_token_refresh(self, params: dict[str, str]) -> dict[str, Any]:
        old = self.refresh_tokens.pop(params.get("refresh_token", ""), None)
        if old is None:
            raise RefusalError(
                15, "Remote service error", "isv.refresh-token-invalid", "refresh_token无效"
            )
        sub = self.sessions.pop(old, True)
        access, refresh = f"at-{secrets.token_hex(6)}", f"rt-{secrets.token_hex(6)}"
        self.grant(access, refresh, sub_account=sub)
        result = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "re_expires_in": 2592000,
            "taobao_user_nick": self.seller_nick,
        }
        return {"token_result": json.dumps(result, ensure_ascii=False)}

    def _m_tmc_user_permit(self, params: dict[str, str]) -> dict[str, Any]:
        # The session names the seller; `topics` (optional) narrows the app's subscriptions.
        if params.get("topics", "x") == "":
            raise RefusalError(41, "Invalid arguments:topics")
        self.permitted.add(self.seller_nick)
        return {"is_success": True}

    METHODS: ClassVar[dict[str, Callable[[FakeTaobao, dict[str, str]], dict[str, Any]]]] = {
        "taobao.tmc.user.permit": _m_tmc_user_permit,
        "taobao.refund.get": _m_refund_get,
        "taobao.refunds.receive.get": _m_refunds_receive_get,
        "taobao.refund.refusereason.get": _m_refund_refusereason_get,
        "taobao.refund.messages.get": _m_refund_messages_get,
        "taobao.refund.message.add": _m_refund_message_add,
        "taobao.rp.refund.review": _m_rp_refund_review,
        "taobao.rp.refunds.agree": _m_rp_refunds_agree,
        "taobao.refund.refuse": _m_refund_refuse,
        "taobao.rp.refund.intercept": _m_rp_refund_intercept,
        "taobao.top.auth.token.refresh": _m_top_auth_token_refresh,
    }

    # -- TMC -----------------------------------------------------------------------------

    async def channel(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        first = await ws.receive()
        if first.type != WSMsgType.BINARY:
            await ws.close()
            return ws
        try:
            hello = tmc.decode(first.data)
        except tmc.FrameError:
            await ws.close()
            return ws
        problem = self._connect_problem(hello)
        self.connects.append({**hello.content, "accepted": problem is None})
        if problem is not None:
            await ws.send_bytes(
                tmc.encode(tmc.Frame(tmc.CONNECTACK, status_code=401, status_phrase=problem))
            )
            await ws.close()
            return ws
        group = str(hello.content.get("group_name") or "default")
        key = f"{self.app_key}:{group}"
        old = self.connections.get(key)
        if old is not None:
            self.kicked += 1
            await old.ws.close(message=b"kicked by a newer connection")
        connection = Connection(ws, secrets.token_hex(8), group)
        self.connections[key] = connection
        await ws.send_bytes(tmc.encode(tmc.Frame(tmc.CONNECTACK, token=connection.token)))
        try:
            async for received in ws:
                if received.type != WSMsgType.BINARY:
                    continue
                try:
                    frame = tmc.decode(received.data)
                except tmc.FrameError:
                    break
                if frame.token != connection.token:
                    continue
                await self._answer(connection, frame)
        finally:
            if self.connections.get(key) is connection:
                del self.connections[key]
                for queued in self.queue.values():
                    queued.sent_at = None
        return ws

    def _connect_problem(self, hello: tmc.Frame) -> str | None:
        fields = hello.content
        if hello.type != tmc.CONNECT:
            return "expected CONNECT"
        if fields.get("app_key") != self.app_key:
            return "invalid app_key"
        stamp = str(fields.get("timestamp") or "")
        if not stamp.isdigit():
            return "invalid timestamp"
        sent = datetime.fromtimestamp(int(stamp) / 1000, UTC)
        if abs(sent - self.now()) > MAX_SKEW:
            return "timestamp out of range"
        group = str(fields.get("group_name") or "default")
        plain = f"{self.app_secret}app_key{self.app_key}group_name{group}timestamp{stamp}{self.app_secret}"
        if fields.get("sign") != hashlib.md5(plain.encode()).hexdigest().upper():
            return "invalid sign"
        return None

    async def _answer(self, connection: Connection, frame: tmc.Frame) -> None:
        kind = frame.content.get(tmc.KIND)
        message_id = frame.content.get("id")
        if frame.type == tmc.SEND and kind == tmc.PULL_REQUEST:
            await self._push(connection)
        elif frame.type == tmc.SEND and kind == tmc.CONFIRM and message_id is not None:
            if self.queue.pop(int(message_id), None) is not None:
                self.confirms.append(int(message_id))
        elif frame.type == tmc.SENDACK and kind == tmc.FAILED and message_id is not None:
            queued = self.queue.get(int(message_id))
            self.nacks.append((int(message_id), str(frame.content.get("msg") or "")))
            if queued is not None:
                queued.sent_at = None

    async def _push(self, connection: Connection) -> None:
        clock = asyncio.get_running_loop().time()
        due = [
            q
            for q in self.queue.values()
            if q.sent_at is None or clock - q.sent_at >= self.redeliver_s
        ][: self.batch]
        for queued in due:
            queued.sent_at = clock
            content: dict[str, Any] = {
                "id": tmc.Int64(queued.id),
                "topic": queued.topic,
                "content": queued.content,
                "nick": queued.nick,
                "outtime": self.now() + timedelta(days=3),
                "publisher": "4272",
            }
            await connection.ws.send_bytes(tmc.encode(tmc.Frame(tmc.SEND, content=content)))

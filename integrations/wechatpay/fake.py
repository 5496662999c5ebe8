"""FakeWechatPay: 商家转账 transfer-bills (create, query by out_bill_no, cancel) and its result
notification, for tests and the demo.

Written from the API docs (wechatpay-im/website openapi/v3/fund-app/mch-transfer/*.md, the
official 发起转账 / 商户单号查询转账单 / 撤销转账 pages, webhook MCHTRANSFER.BILL.FINISHED), not
from our client: it checks `Authorization: WECHATPAY2-SHA256-RSA2048` (RSA-SHA256 over
METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n with the merchant's public key, mchid, serial_no,
±5 min), decrypts `user_name` (RSA-OAEP) with its own key, signs every answer with its own
key (timestamp\\nnonce\\nbody\\n) under `public_key_id`, and keeps one bill per out_bill_no:
the same parameters again answer the existing bill, other parameters the documented
INVALID_REQUEST. Bills wait for the buyer (WAIT_USER_CONFIRM) until `confirm` (SUCCESS),
`refuse` (FAIL), `expire_due` (CANCELLED after the window) or a cancel (CANCELING, then
CANCELLED). Knobs fail the next calls: a 500 before acting, or acting and then timing out or
dropping the connection. `notify` POSTs the encrypted notification.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BEIJING = ZoneInfo("Asia/Shanghai")
BASE = "/v3/fund-app/mch-transfer/transfer-bills"
AUTH = re.compile(r"^WECHATPAY2-SHA256-RSA2048 (.+)$")
PARAM = re.compile(r'(\w+)="([^"]*)"')
OUT_BILL_NO = re.compile(r"^[A-Za-z0-9]{1,32}$")
# 转账场景 → the 报备信息 it requires and the 用户收款感知 it may show (商家转账 product docs).
SCENES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "1000": (("活动名称", "奖励说明"), ("活动奖励", "现金奖励")),
    "1011": (("赔付原因",), ("退款", "商家赔付")),
}
FINAL = frozenset({"SUCCESS", "FAIL", "CANCELLED"})


@dataclass
class FakeBill:
    out_bill_no: str
    params: dict[str, Any]
    transfer_bill_no: str
    state: str
    package_info: str
    created: datetime
    updated: datetime
    fail_reason: str = ""


@dataclass
class FakeWechatPay:
    mchid: str
    appid: str
    merchant_public_key: rsa.RSAPublicKey
    merchant_serial_no: str
    apiv3_key: str
    platform_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    public_key_id: str = "PUB_KEY_ID_0112345678902025010100000000000000"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_skew_s: float = 300.0
    confirm_window: timedelta = timedelta(hours=24)
    fail_next: int = 0
    fail_how: Literal["error", "timeout", "lose"] = "error"
    hang_s: float = 1.0
    balance_fen: int | None = None
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    bills: dict[str, FakeBill] = field(default_factory=dict)
    bad_signatures: int = 0
    notifications: list[tuple[str, int]] = field(default_factory=list)
    _serial: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(BASE, self.create)
        app.router.add_get(BASE + "/out-bill-no/{no}", self.query)
        app.router.add_post(BASE + "/out-bill-no/{no}/cancel", self.cancel)
        return app

    @property
    def public_key_pem(self) -> str:
        """微信支付公钥 as the merchant downloads it (`[payout.wechatpay] public_key`)."""
        return (
            self.platform_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    @property
    def made(self) -> int:
        """Bills created, whatever was repeated."""
        return len(self.bills)

    # -- the buyer and time -------------------------------------------------------------

    def confirm(self, out_bill_no: str) -> None:
        """The buyer taps 确认收款 on the confirm page."""
        self._end(out_bill_no, "SUCCESS")

    def refuse(self, out_bill_no: str, reason: str = "PAYEE_ACCOUNT_ABNORMAL") -> None:
        self._end(out_bill_no, "FAIL", reason)

    def expire_due(self) -> list[str]:
        """Bills the buyer left unconfirmed past the window are cancelled by WeChat Pay."""
        due = [
            b.out_bill_no
            for b in self.bills.values()
            if b.state == "WAIT_USER_CONFIRM" and self.now() - b.created >= self.confirm_window
        ]
        for no in due:
            self._end(no, "CANCELLED")
        return due

    def _end(self, out_bill_no: str, state: str, reason: str = "") -> None:
        bill = self.bills[out_bill_no]
        assert bill.state not in FINAL, f"{out_bill_no} already {bill.state}"
        bill.state, bill.fail_reason, bill.updated = state, reason, self.now()

    # -- the API -------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        refused = self._check(request, body)
        if refused is not None:
            return refused
        try:
            params = json.loads(body)
            assert isinstance(params, dict)
        except (ValueError, AssertionError):
            return self._error(400, "PARAM_ERROR", "请求体不是JSON对象")
        if self.fail_next > 0 and self.fail_how == "error":
            self.fail_next -= 1
            return self._error(500, "SYSTEM_ERROR", "系统错误，请使用相同参数稍后重新调用")
        problem = self._invalid(request, params)
        if problem is not None:
            return self._error(*problem)
        comparable = self._comparable(params)
        bill = self.bills.get(params["out_bill_no"])
        if bill is not None and bill.params != comparable:
            return self._error(400, "INVALID_REQUEST", "单号已存在但信息不一致,请查单后比较确认")
        if bill is None:
            if self.balance_fen is not None and params["transfer_amount"] > self.balance_fen:
                return self._error(403, "NOT_ENOUGH", "商户账户资金不足")
            self._serial += 1
            stamp = self.now()
            bill = FakeBill(
                out_bill_no=params["out_bill_no"],
                params=comparable,
                transfer_bill_no=f"1330000{self._serial:013d}{stamp:%Y%m%d}0001",
                state="WAIT_USER_CONFIRM",
                package_info="ABBQO+oYAAABAAAAAAAk" + secrets.token_urlsafe(24),
                created=stamp,
                updated=stamp,
            )
            self.bills[bill.out_bill_no] = bill
        answer = {
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "create_time": _time(bill.created),
            "state": bill.state,
        }
        if bill.state == "WAIT_USER_CONFIRM":
            answer["package_info"] = bill.package_info
        if bill.fail_reason:
            answer["fail_reason"] = bill.fail_reason
        return await self._maybe_lose(request, self._answer(200, answer))

    async def query(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request, "")
        if refused is not None:
            return refused
        bill = self.bills.get(request.match_info["no"])
        if bill is None:
            return self._error(404, "NOT_FOUND", "记录不存在")
        if bill.state == "CANCELING":
            bill.state, bill.updated = "CANCELLED", self.now()
        # The query answer carries no package_info (keep the one the create answer gave).
        answer = {
            "mch_id": self.mchid,
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "appid": self.appid,
            "state": bill.state,
            "transfer_amount": bill.params["transfer_amount"],
            "transfer_remark": bill.params["transfer_remark"],
            "openid": bill.params["openid"],
            "create_time": _time(bill.created),
            "update_time": _time(bill.updated),
        }
        if bill.fail_reason:
            answer["fail_reason"] = bill.fail_reason
        return self._answer(200, answer)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request, await request.text())
        if refused is not None:
            return refused
        bill = self.bills.get(request.match_info["no"])
        if bill is None:
            return self._error(404, "NOT_FOUND", "记录不存在")
        if bill.state in FINAL:
            return self._error(400, "INVALID_REQUEST", "单据已是终态，不可撤销")
        if bill.state != "CANCELING":
            bill.state, bill.updated = "CANCELING", self.now()
        answer = {
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": bill.state,
            "update_time": _time(bill.updated),
        }
        return self._answer(200, answer)

    # -- notification --------------------------------------------------------------------

    def notification(self, out_bill_no: str) -> tuple[dict[str, str], str]:
        """The signed MCHTRANSFER.BILL.FINISHED for a bill that ended: headers and body."""
        bill = self.bills[out_bill_no]
        plain = {
            "mchid": self.mchid,
            "out_bill_no": bill.out_bill_no,
            "transfer_bill_no": bill.transfer_bill_no,
            "state": bill.state,
            "transfer_amount": bill.params["transfer_amount"],
            "openid": bill.params["openid"],
            "create_time": _time(bill.created),
            "update_time": _time(bill.updated),
        }
        if bill.fail_reason:
            plain["fail_reason"] = bill.fail_reason
        nonce = secrets.token_hex(6)
        sealed = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(plain, ensure_ascii=False).encode(), b"mch_payment"
        )
        body = json.dumps(
            {
                "id": f"EV-{bill.transfer_bill_no}-{bill.state}",
                "create_time": _time(self.now()),
                "resource_type": "encrypt-resource",
                "event_type": "MCHTRANSFER.BILL.FINISHED",
                "summary": "商家转账单据终态通知",
                "resource": {
                    "original_type": "mch_payment",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode("ascii"),
                    "associated_data": "mch_payment",
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        )
        return self._signed_headers(body), body

    async def notify(self, session: aiohttp.ClientSession, url: str, out_bill_no: str) -> int:
        headers, body = self.notification(out_bill_no)
        headers["Content-Type"] = "application/json"
        async with session.post(url, data=body.encode(), headers=headers) as resp:
            self.notifications.append((out_bill_no, resp.status))
            return resp.status

    # -- checks and answers --------------------------------------------------------------

    def _check(self, request: web.Request, body: str) -> web.Response | None:
        self.requests.append((request.method, request.path_qs, body))
        match = AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return self._error(401, "SIGN_ERROR", "Authorization 缺失或认证类型错误")
        auth = dict(PARAM.findall(match.group(1)))
        if auth.get("mchid") != self.mchid:
            return self._error(401, "SIGN_ERROR", "商户号与签名信息不符")
        if auth.get("serial_no") != self.merchant_serial_no:
            return self._error(401, "SIGN_ERROR", "商户证书序列号有误")
        try:
            sent = int(auth.get("timestamp", ""))
            signature = base64.b64decode(auth.get("signature", ""), validate=True)
        except (ValueError, binascii.Error):
            return self._error(401, "SIGN_ERROR", "签名参数格式错误")
        if abs(self.now().timestamp() - sent) > self.max_skew_s:
            return self._error(401, "SIGN_ERROR", "时间戳已过期")
        message = (
            f"{request.method}\n{request.path_qs}\n{sent}\n{auth.get('nonce_str', '')}\n{body}\n"
        )
        try:
            self.merchant_public_key.verify(
                signature, message.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            self.bad_signatures += 1
            return self._error(401, "SIGN_ERROR", "签名错误")
        return None

    def _invalid(self, request: web.Request, p: dict[str, Any]) -> tuple[int, str, str] | None:
        required = ("appid", "out_bill_no", "transfer_scene_id", "openid", "transfer_amount")
        missing = [k for k in (*required, "transfer_remark") if not p.get(k)]
        if missing:
            return 400, "PARAM_ERROR", f"缺少参数 {missing[0]}"
        if p["appid"] != self.appid:
            return 400, "INVALID_REQUEST", "APPID不存在"
        if not OUT_BILL_NO.match(str(p["out_bill_no"])):
            return 400, "PARAM_ERROR", "商户单号只能由数字、大小写字母组成"
        amount = p["transfer_amount"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return 400, "PARAM_ERROR", "转账金额必须为正整数（分）"
        if len(str(p["transfer_remark"])) > 32:
            return 400, "PARAM_ERROR", "转账备注最多32个字符"
        scene = SCENES.get(str(p["transfer_scene_id"]))
        if scene is None:
            return 400, "INVALID_REQUEST", "你尚未获取该转账场景"
        needs, perceptions = scene
        given = {i.get("info_type") for i in p.get("transfer_scene_report_infos") or []}
        if set(needs) - given:
            return 400, "PARAM_ERROR", f"转账场景报备信息缺少 {sorted(set(needs) - given)[0]}"
        if p.get("user_recv_perception") not in (None, *perceptions):
            return 400, "INVALID_REQUEST", "暂不支持展示当前传入的用户收款感知"
        if "user_name" in p:
            if request.headers.get("Wechatpay-Serial") != self.public_key_id:
                return 400, "PARAM_ERROR", "Wechatpay-Serial 与加密公钥不符"
            if self._decrypt_name(str(p["user_name"])) is None:
                return 400, "PARAM_ERROR", "user_name 解密失败"
        elif amount >= 200_000:
            return 400, "PARAM_ERROR", "转账金额>=2000元时，收款用户姓名必填"
        return None

    def _decrypt_name(self, cipher: str) -> str | None:
        try:
            plain = self.platform_key.decrypt(
                base64.b64decode(cipher),
                padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
            )
        except (ValueError, binascii.Error):
            return None
        return plain.decode()

    def _comparable(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters a repeat must match (`user_name` compared decrypted: OAEP is random)."""
        same = dict(params)
        if "user_name" in same:
            same["user_name"] = self._decrypt_name(str(same["user_name"]))
        return same

    def _signed_headers(self, body: str) -> dict[str, str]:
        timestamp = str(int(self.now().timestamp()))
        nonce = secrets.token_hex(16)
        signature = self.platform_key.sign(
            f"{timestamp}\n{nonce}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode("ascii"),
            "Wechatpay-Serial": self.public_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Request-ID": secrets.token_hex(16),
        }

    def _answer(self, status: int, document: dict[str, Any]) -> web.Response:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        return web.Response(
            status=status,
            text=body,
            content_type="application/json",
            charset="utf-8",
            headers=self._signed_headers(body),
        )

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return self._answer(status, {"code": code, "message": message})

    async def _maybe_lose(self, request: web.Request, answer: web.Response) -> web.StreamResponse:
        if self.fail_next <= 0 or self.fail_how == "error":
            return answer
        self.fail_next -= 1
        if self.fail_how == "timeout":
            await asyncio.sleep(self.hang_s)
            return answer
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=200)


def _time(at: datetime) -> str:
    return at.astimezone(BEIJING).isoformat(timespec="seconds")

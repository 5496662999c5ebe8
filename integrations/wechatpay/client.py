"""WeChat Pay 商家转账 as the `wechatpay` payout provider: create a transfer bill, query it,
cancel it.

The payee (`TransferOrder.account`) is the buyer's openid under `appid`; the amount is fen.
`out_bill_no` is the payout's `out_biz_no` when WeChat Pay accepts it as is (≤ 32 letters and
digits), otherwise a fixed digest of it, so the same payout always names the same bill. Every
answer is checked against WeChat Pay's key. A lost, unsigned or 5xx answer, a rate limit or an
error code we do not know is UNKNOWN: ask (query), never resend under a new number (the API doc
says so: 发起转账, "接口返回的HTTP状态码不为200时,请务必不要立即更换商户订单单号重试").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import secrets
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.ports import TransferOrder, TransferResult, TransferStatus
from integrations.wechatpay import keys as wxkeys
from integrations.wechatpay.models import (
    TRANSFER_BILLS,
    Bill,
    ErrorAnswer,
    SceneReportInfo,
    TransferBillRequest,
    by_out_bill_no,
    cancel_path,
)
from integrations.wechatpay.settings import (
    FORBIDDEN_WORDS,
    SCENES,
    WechatPaySettings,
)

log = logging.getLogger(__name__)

OUT_BILL_NO = re.compile(r"[A-Za-z0-9]{1,32}")
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# 转账金额 ≥ 2,000 元: 收款用户姓名 is required (发起转账, user_name).
NAME_REQUIRED_FEN = 200_000
PAID = frozenset({"SUCCESS"})
ENDED = frozenset({"FAIL", "CANCELLED"})
MOVING = frozenset({"ACCEPTED", "PROCESSING", "TRANSFERING", "CANCELING"})
WAITING = "WAIT_USER_CONFIRM"
CANCELLED_TEXT = "已撤销：商户撤销，或买家未在时限内确认收款"
# Refusals that say the request itself will never pass as it is; anything else is unsure.
REFUSALS = frozenset({"PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "NOT_ENOUGH", "SIGN_ERROR"})


def _not_found(result: TransferResult) -> ErrorAnswer:
    return ErrorAnswer.model_validate({"code": "NOT_FOUND", "message": result.detail})


def out_bill_no(out_biz_no: str) -> str:
    if OUT_BILL_NO.fullmatch(out_biz_no):
        return out_biz_no
    return "WX" + hashlib.sha256(out_biz_no.encode()).hexdigest()[:30].upper()


def result_of(bill: Bill) -> TransferResult:
    """What a bill's `state` means to the payout flow."""
    state = bill.state
    reference = bill.transfer_bill_no
    if state in PAID:
        return TransferResult(TransferStatus.SUCCESS, reference, state)
    if state in ENDED:
        why = bill.fail_reason or (CANCELLED_TEXT if state == "CANCELLED" else state)
        return TransferResult(TransferStatus.FAILED, reference, state, why)
    if state == WAITING:
        return TransferResult(
            TransferStatus.WAITING_BUYER,
            reference,
            state,
            "等待买家在微信确认收款",
            confirm=bill.package_info,
        )
    if state in MOVING:
        return TransferResult(TransferStatus.PROCESSING, reference, state)
    return TransferResult(TransferStatus.UNKNOWN, reference, state, f"unknown state {state}")


class WechatPayTransfers:
    """The Payouts port over transfer-bills; `cancel` takes back a bill the buyer has not
    confirmed yet (the answer only says the cancellation started: query for the end)."""

    def __init__(
        self, settings: WechatPaySettings, session: aiohttp.ClientSession, clock: Clock
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.keys = wxkeys.load_keys(settings, clock.now())
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout_s)

    async def transfer(self, order: TransferOrder) -> TransferResult:
        bill_no = out_bill_no(order.out_biz_no)
        refused = self._refuse_locally(order)
        if refused:
            return TransferResult(TransferStatus.FAILED, "", "NOT_SENT", refused)
        body = self.body(order).model_dump_json(exclude_none=True)
        answer = await self._bill("POST", TRANSFER_BILLS, body)
        if isinstance(answer, TransferResult) and answer.status is not TransferStatus.NOT_FOUND:
            return answer
        status, error = (404, _not_found(answer)) if isinstance(answer, TransferResult) else answer
        # An out_bill_no that already exists (with these or other parameters) is answered by
        # what the bill says; a refusal for a bill that does not exist is final.
        found = await self.query(order.out_biz_no)
        if found.status is not TransferStatus.NOT_FOUND:
            if found.status is not TransferStatus.UNKNOWN:
                said = f"{error.code} {error.message}".strip()
                found = dataclasses.replace(
                    found, detail=f"{found.detail} (create: {said})".strip()
                )
            return found
        if error.code in REFUSALS and status < 500 and status != 429:
            return TransferResult(
                TransferStatus.FAILED, "", error.code, error.message or error.code
            )
        return _unknown(f"create {bill_no}: HTTP {status} {error.code} {error.message}".strip())

    async def query(self, out_biz_no: str) -> TransferResult:
        answer = await self._bill("GET", by_out_bill_no(out_bill_no(out_biz_no)), None)
        if isinstance(answer, TransferResult):
            return answer
        status, error = answer
        return _unknown(f"query: HTTP {status} {error.code} {error.message}".strip())

    async def cancel(self, out_biz_no: str) -> TransferResult:
        answer = await self._bill("POST", cancel_path(out_bill_no(out_biz_no)), None)
        if isinstance(answer, TransferResult):
            return answer
        _status, error = answer
        # The bill is past cancelling (or the call failed): its own state says which.
        found = await self.query(out_biz_no)
        said = f"cancel refused: {error.code} {error.message}".strip()
        return dataclasses.replace(found, detail=f"{found.detail} ({said})".strip())

    async def _bill(
        self, method: str, path: str, body: str | None
    ) -> TransferResult | tuple[int, ErrorAnswer]:
        """A call answered by a bill: what it says (NOT_FOUND for none, UNKNOWN when the answer
        was lost), or the HTTP status and error of any other refusal."""
        answer = await self._call(method, path, body)
        if isinstance(answer, TransferResult):
            return answer
        status, document = answer
        if status == 200:
            return result_of(Bill.model_validate(document))
        error = ErrorAnswer.model_validate(document)
        if status == 404 or error.code == "NOT_FOUND":
            return TransferResult(TransferStatus.NOT_FOUND, "", "NOT_FOUND", error.message)
        return status, error

    def body(self, order: TransferOrder) -> TransferBillRequest:
        s = self.settings
        return TransferBillRequest(
            appid=s.appid,
            out_bill_no=out_bill_no(order.out_biz_no),
            transfer_scene_id=s.transfer_scene_id,
            openid=order.account,
            user_name=self.keys.encrypt(order.name) if order.name else None,
            transfer_amount=order.amount_fen,
            transfer_remark=order.title[:32],
            notify_url=s.notify_url or None,
            user_recv_perception=s.user_recv_perception or None,
            transfer_scene_report_infos=self.report_infos(order) or None,
        )

    def report_infos(self, order: TransferOrder) -> list[SceneReportInfo]:
        fill = {"title": order.title, "remark": order.remark or order.title}
        if self.settings.report_infos:
            return [
                SceneReportInfo(info_type=r.info_type, info_content=r.info_content.format(**fill))
                for r in self.settings.report_infos
            ]
        scene = SCENES.get(self.settings.transfer_scene_id)
        if scene is None:
            return []
        contents = [fill["title"], *[fill["remark"]] * (len(scene.report_types) - 1)]
        return [
            SceneReportInfo(info_type=kind, info_content=content)
            for kind, content in zip(scene.report_types, contents, strict=True)
        ]

    def _refuse_locally(self, order: TransferOrder) -> str:
        """Why this order must not leave at all ("" when it may)."""
        if not OPENID.fullmatch(order.account):
            return "收款账号不是买家的 openid（微信商家转账只能转给 appid 下的 openid）"
        if order.amount_fen >= NAME_REQUIRED_FEN and not order.name:
            return "2000 元及以上的微信转账必须提供收款人姓名"
        shown = [order.title, order.remark, *(i.info_content for i in self.report_infos(order))]
        if any(word in text for text in shown for word in FORBIDDEN_WORDS):
            return "好评返现违反平台规则：请写成 补偿 / 补差价 / 活动返现"
        return ""

    async def _call(
        self, method: str, path: str, body: str | None
    ) -> tuple[int, dict[str, Any]] | TransferResult:
        headers = {
            "Authorization": self.authorization(method, path, body or ""),
            "Accept": "application/json",
            "Wechatpay-Serial": self.keys.encrypt_serial,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.settings.api_base.rstrip("/") + path
        try:
            async with self.session.request(
                method,
                url,
                data=body.encode() if body is not None else None,
                headers=headers,
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                status = resp.status
                answer_headers = dict(resp.headers.items())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unknown(f"{method} {path}: no answer ({type(exc).__name__})")
        if status >= 500:
            return _unknown(f"{method} {path}: HTTP {status}")
        problem = wxkeys.verify(
            self.keys,
            answer_headers,
            text,
            now=self.clock.now(),
            max_skew_s=self.settings.max_skew_s,
        )
        if problem is not None:
            return _unknown(f"{method} {path}: answer not WeChat Pay's ({problem}; HTTP {status})")
        try:
            document = json.loads(text) if text else {}
        except ValueError:
            return _unknown(f"{method} {path}: unreadable answer (HTTP {status})")
        if not isinstance(document, dict):
            return _unknown(f"{method} {path}: unreadable answer (HTTP {status})")
        return status, document

    def authorization(self, method: str, path: str, body: str) -> str:
        """`Authorization: WECHATPAY2-SHA256-RSA2048 …` over METHOD\\nURL\\nts\\nnonce\\nbody\\n."""
        timestamp = str(int(self.clock.now().timestamp()))
        nonce = secrets.token_hex(16).upper()
        signature = self.keys.sign(f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
        s = self.settings
        return (
            f'{wxkeys.SIGNATURE_TYPE} mchid="{s.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{s.cert_serial_no}"'
        )


def _unknown(detail: str) -> TransferResult:
    return TransferResult(TransferStatus.UNKNOWN, "", "UNKNOWN", detail)


def config_problems(settings: WechatPaySettings, clock: Clock) -> list[str]:
    """What `[payout.wechatpay]` still needs, named as the config and env spell it."""
    found: list[str] = []
    env = "REFUNDOPS_PAYOUT__WECHATPAY__"
    for name in ("mchid", "appid", "cert_serial_no"):
        if not getattr(settings, name):
            found.append(f"payout.wechatpay.{name} is empty")
    secret = settings.private_key.get_secret_value()
    if not secret:
        found.append(f"missing secret payout.wechatpay.private_key (set {env}PRIVATE_KEY)")
    else:
        try:
            wxkeys.load_private_key(secret)
        except wxkeys.BadKeyError as exc:
            found.append(f"payout.wechatpay.private_key: {exc}")
    apiv3 = settings.apiv3_key.get_secret_value()
    if len(apiv3.encode()) != 32:
        found.append(
            f"payout.wechatpay.apiv3_key must be the 32-byte APIv3 key (set {env}APIV3_KEY)"
        )
    if bool(settings.public_key) != bool(settings.public_key_id):
        found.append("payout.wechatpay.public_key and public_key_id go together")
    if settings.public_key:
        try:
            wxkeys.load_public_key(settings.public_key)
        except wxkeys.BadKeyError as exc:
            found.append(f"payout.wechatpay.public_key: {exc}")
    elif settings.platform_cert_dir:
        if not wxkeys.load_certificates(settings.platform_cert_dir, clock.now()):
            found.append("payout.wechatpay.platform_cert_dir holds no valid certificate")
    else:
        found.append(
            "payout.wechatpay needs public_key + public_key_id (微信支付公钥) or platform_cert_dir"
        )
    if not settings.api_base:
        found.append("payout.wechatpay.api_base is empty")
    if settings.notify_url and not settings.notify_url.startswith("https://"):
        found.append("payout.wechatpay.notify_url must be https (WeChat Pay calls only https)")
    scene = SCENES.get(settings.transfer_scene_id)
    if scene is None and not settings.report_infos:
        found.append(
            f"payout.wechatpay.transfer_scene_id {settings.transfer_scene_id!r} is not one we "
            "know: list its report_infos"
        )
    if scene and settings.user_recv_perception not in ("", *scene.perceptions):
        allowed = " / ".join(scene.perceptions)
        found.append(
            f"payout.wechatpay.user_recv_perception {settings.user_recv_perception!r} is not "
            f"shown for {scene.name}: use {allowed}"
        )
    for info in settings.report_infos:
        if any(word in info.info_content for word in FORBIDDEN_WORDS):
            found.append("payout.wechatpay.report_infos: 好评返现 is against the platforms' rules")
    return found

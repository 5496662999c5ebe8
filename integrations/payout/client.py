"""The Alipay fund-transfer client (`[payout] provider = "alipay"`); `manual` needs no client.

Every answer is checked against the Alipay public key. A lost, unreadable or unsigned answer
is UNKNOWN: the caller then asks `alipay.fund.trans.common.query` and never sends blind.
"""

from __future__ import annotations

import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.clock import Clock
from handlers.money import fen_to_yuan
from handlers.ports import TransferOrder, TransferResult, TransferStatus
from integrations.payout import signing
from integrations.payout.models import (
    QUERY,
    TRANSFER,
    Outbound,
    PayeeInfo,
    QueryAnswer,
    QueryBiz,
    TransferAnswer,
    TransferBiz,
)
from integrations.payout.settings import PayoutSettings

SUCCESS_CODE = "10000"
BEIJING = ZoneInfo("Asia/Shanghai")
ALIPAY_USER_ID = re.compile(r"2088\d{12}")
# Answers in which Alipay itself does not know whether the order went through.
UNSURE_CODES = frozenset({"20000"})
UNSURE_SUB_CODES = frozenset({"SYSTEM_ERROR", "aop.unknow-error", "isp.unknow-error"})
PAID = frozenset({"SUCCESS"})
ENDED = frozenset({"FAIL", "CLOSED", "REFUND"})


class AlipayClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: str,
        private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        gateway: str,
        clock: Clock,
        timeout_s: float = 10.0,
        app_cert_sn: str = "",
        root_cert_sn: str = "",
    ) -> None:
        self.session = session
        self.app_id = app_id
        self.private_key = private_key
        self.alipay_public_key = alipay_public_key
        self.gateway = gateway
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.cert_params = {"app_cert_sn": app_cert_sn, "alipay_root_cert_sn": root_cert_sn}

    async def transfer(self, order: TransferOrder) -> TransferResult:
        biz = TransferBiz(
            out_biz_no=order.out_biz_no,
            trans_amount=str(fen_to_yuan(order.amount_fen)),
            order_title=order.title[:128],
            payee_info=payee_info(order.account, order.name),
            remark=order.remark[:200] or None,
        )
        answer = await self._call(TRANSFER, biz)
        if isinstance(answer, TransferResult):
            return answer
        parsed = TransferAnswer.model_validate(answer)
        if parsed.code != SUCCESS_CODE:
            return _refused(parsed.code, parsed.sub_code, parsed.sub_msg or parsed.msg)
        reference = parsed.order_id or parsed.pay_fund_order_id
        if parsed.status in PAID:
            return TransferResult(TransferStatus.SUCCESS, reference, parsed.status)
        if parsed.status in ENDED:
            return TransferResult(TransferStatus.FAILED, reference, parsed.status, parsed.status)
        return TransferResult(TransferStatus.PROCESSING, reference, parsed.status)

    async def query(self, out_biz_no: str) -> TransferResult:
        answer = await self._call(QUERY, QueryBiz(out_biz_no=out_biz_no))
        if isinstance(answer, TransferResult):
            return answer
        parsed = QueryAnswer.model_validate(answer)
        if parsed.code != SUCCESS_CODE:
            if parsed.sub_code == "ORDER_NOT_EXIST":
                return TransferResult(TransferStatus.NOT_FOUND, "", parsed.sub_code, parsed.sub_msg)
            # A failed query says nothing about the transfer itself.
            detail = f"query {parsed.code} {parsed.sub_code} {parsed.sub_msg or parsed.msg}"
            return TransferResult(TransferStatus.UNKNOWN, "", parsed.sub_code, detail.strip())
        reference = parsed.order_id or parsed.pay_fund_order_id
        if parsed.status in PAID:
            return TransferResult(TransferStatus.SUCCESS, reference, parsed.status)
        if parsed.status in ENDED:
            why = parsed.fail_reason or parsed.error_code or parsed.status
            return TransferResult(TransferStatus.FAILED, reference, parsed.status, why)
        return TransferResult(TransferStatus.PROCESSING, reference, parsed.status)

    def request(self, method: str, biz: Outbound) -> dict[str, str]:
        """The signed form of one gateway call."""
        now = self.clock.now().astimezone(BEIJING)
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": f"{now:%Y-%m-%d %H:%M:%S}",
            "version": "1.0",
            "biz_content": json.dumps(
                biz.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":")
            ),
            **{k: v for k, v in self.cert_params.items() if v},
        }
        return signing.sign_params(self.private_key, params)

    async def _call(self, method: str, biz: Outbound) -> dict[str, Any] | TransferResult:
        form = self.request(method, biz)
        try:
            async with self.session.post(
                self.gateway,
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    return _unknown(f"{method}: HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _unknown(f"{method}: no answer ({type(exc).__name__})")
        node = response_node(text, method)
        if node is None:
            return _unknown(f"{method}: unreadable answer")
        raw, sign = node
        answer = json.loads(raw)
        if not sign or not signing.verify(self.alipay_public_key, raw, sign):
            said = " ".join(str(answer.get(k, "")) for k in ("code", "sub_code", "sub_msg"))
            return _unknown(f"{method}: answer not signed by Alipay ({said.strip()})")
        assert isinstance(answer, dict)
        return answer


def payee_info(account: str, name: str) -> PayeeInfo:
    """A 2088… number is an Alipay user id; a phone or e-mail is a logon id, which needs the name."""
    if ALIPAY_USER_ID.fullmatch(account):
        return PayeeInfo(identity=account, identity_type="ALIPAY_USER_ID", name=name or None)
    return PayeeInfo(identity=account, identity_type="ALIPAY_LOGON_ID", name=name or None)


def response_node(text: str, method: str) -> tuple[str, str] | None:
    """The exact JSON text of the `<method>_response` object (what Alipay signed) and `sign`."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    key = method.replace(".", "_") + "_response"
    if key not in document:
        key = "error_response"
    if not isinstance(document.get(key), dict):
        return None
    start = text.find(f'"{key}"')
    start = text.index(":", start + len(key) + 2) + 1
    while text[start].isspace():
        start += 1
    _, end = json.JSONDecoder().raw_decode(text, start)
    sign = document.get("sign")
    return text[start:end], sign if isinstance(sign, str) else ""


def _unknown(detail: str) -> TransferResult:
    return TransferResult(TransferStatus.UNKNOWN, "", "UNKNOWN", detail)


def _refused(code: str, sub_code: str, message: str) -> TransferResult:
    if (
        code in UNSURE_CODES
        or sub_code in UNSURE_SUB_CODES
        or sub_code.startswith(("isp.", "aop."))
    ):
        return _unknown(f"{code} {sub_code} {message}".strip())
    return TransferResult(TransferStatus.FAILED, "", sub_code or code, message or sub_code or code)


def from_settings(
    settings: PayoutSettings, session: aiohttp.ClientSession, clock: Clock
) -> AlipayClient | None:
    """The client for `[payout]`, or None when finance pays by hand."""
    if settings.provider != "alipay":
        return None
    return AlipayClient(
        session,
        app_id=settings.alipay_app_id,
        private_key=signing.load_private_key(settings.alipay_private_key.get_secret_value()),
        alipay_public_key=signing.load_public_key(settings.alipay_public_key),
        gateway=settings.alipay_gateway,
        clock=clock,
        timeout_s=settings.alipay_timeout_s,
        app_cert_sn=settings.alipay_app_cert_sn,
        root_cert_sn=settings.alipay_root_cert_sn,
    )


def config_problems(settings: PayoutSettings) -> list[str]:
    """What `[payout]` still needs for its provider, named as the config and env spell it."""
    if settings.provider != "alipay":
        return []
    found: list[str] = []
    if not settings.alipay_app_id:
        found.append("payout.provider is 'alipay' but payout.alipay_app_id is empty")
    secret = settings.alipay_private_key.get_secret_value()
    if not secret:
        found.append(
            "missing secret payout.alipay_private_key (set REFUNDOPS_PAYOUT__ALIPAY_PRIVATE_KEY)"
        )
    else:
        try:
            signing.load_private_key(secret)
        except signing.BadKeyError as exc:
            found.append(f"payout.alipay_private_key: {exc}")
    if not settings.alipay_public_key:
        found.append("payout.alipay_public_key is empty (the 支付宝公钥 answers are checked with)")
    else:
        try:
            signing.load_public_key(settings.alipay_public_key)
        except signing.BadKeyError as exc:
            found.append(f"payout.alipay_public_key: {exc}")
    if not settings.alipay_gateway:
        found.append("payout.alipay_gateway is empty")
    return found

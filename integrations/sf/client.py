"""丰桥 client (`SfClient`: one signed form call to `/std/service`) and `SfInterceptor`, the
`Carrier` port over EXP_RECE_WANTED_INTERCEPT for SF waybills (`[carrier] mode = "sf"`).

`requestID` is derived from the intercept key, so a retried key repeats the same request
rather than making a new one; an answer once had is kept and given again without a call.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import CarrierAnswer
from integrations.carrier.ledger import Ledger, MemoryLedger
from integrations.carrier.names import carrier_code
from integrations.sf import signing
from integrations.sf.models import (
    BUSY,
    INTERCEPT,
    OK,
    ApiAnswer,
    NewDestAddress,
    ResultData,
    WantedIntercept,
)
from integrations.sf.settings import SfAddress, SfSettings

log = logging.getLogger(__name__)

# serviceCode values that send the parcel somewhere and so must say where (newDestAddress).
NEEDS_ADDRESS = frozenset({"1", "2"})
MONTHLY = frozenset({"3", "4"})


def request_id(key: str) -> str:
    """The `requestID` (≤ 40 characters) one intercept key always uses."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"refundops:sf:{key}"))


class SfClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        partner_id: str,
        checkword: str,
        clock: Clock,
        timeout_s: float = 10.0,
    ) -> None:
        self.session = session
        self.url = api_base
        self.partner_id = partner_id
        self.checkword = checkword
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def form(self, service_code: str, msg_data: str, request: str) -> dict[str, str]:
        timestamp = str(int(self.clock.now().timestamp() * 1000))
        return {
            "partnerID": self.partner_id,
            "requestID": request,
            "serviceCode": service_code,
            "timestamp": timestamp,
            "msgDigest": signing.digest(msg_data, timestamp, self.checkword),
            "msgData": msg_data,
        }

    async def call(self, service_code: str, msg_data: str, request: str) -> ResultData:
        """The business answer; raises RetryableError (busy, lost) or PermanentError (ours)."""
        form = self.form(service_code, msg_data, request)
        try:
            async with self.session.post(self.url, data=form, timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"丰桥 {service_code}: no answer ({type(exc).__name__})") from exc
        if status >= 500 or status == 429:
            raise RetryableError(f"丰桥 {service_code}: HTTP {status}")
        if status != 200:
            raise PermanentError(f"丰桥 {service_code}: HTTP {status} {text[:200]}")
        try:
            answer = ApiAnswer.model_validate_json(text)
        except ValueError as exc:
            raise RetryableError(f"丰桥 {service_code}: unreadable answer") from exc
        if answer.apiResultCode != OK:
            said = f"丰桥 {service_code}: {answer.apiResultCode} {answer.apiErrorMsg or ''}".strip()
            if answer.apiResultCode in BUSY:
                raise RetryableError(said)
            raise PermanentError(said)
        try:
            return ResultData.model_validate(json.loads(answer.apiResultData or ""))
        except ValueError as exc:
            raise RetryableError(f"丰桥 {service_code}: unreadable apiResultData") from exc


class SfInterceptor:
    def __init__(
        self,
        client: SfClient,
        *,
        monthly_card: str = "",
        service_code: str = "2",
        role: str = "1",
        pay_mode: str = "4",
        return_address: SfAddress | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.client = client
        self.monthly_card = monthly_card
        self.service_code = service_code
        self.role = role
        self.pay_mode = pay_mode
        self.return_address = return_address
        self.ledger = ledger if ledger is not None else MemoryLedger()

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        seen = await self.ledger.get(key)
        if seen is not None:
            return CarrierAnswer(seen["state"], str(seen.get("detail", "")))
        msg = self.msg_data(data)
        result = await self.client.call(INTERCEPT, msg.text(), request_id(key))
        if result.success:
            answer = CarrierAnswer("accepted", "顺丰已受理拦截退回")
        else:
            log.info("sf refused intercept %s: %s %s", key, result.errorCode, result.errorMsg)
            why = result.errorMsg or result.errorCode or "未说明原因"
            answer = CarrierAnswer("failed", f"顺丰拒绝拦截：{why}")
        await self.ledger.put(key, {"state": answer.status, "detail": answer.detail})
        return answer

    def msg_data(self, data: dict[str, Any]) -> WantedIntercept:
        carrier = carrier_code(str(data.get("carrier", "")))
        if carrier != "SF":
            raise PermanentError(
                f"顺丰丰桥只能拦截顺丰运单（这单是 {carrier or '未知快递'}）："
                "请在 [carrier] routes 给它配置别的线路"
            )
        address = None
        if self.service_code in NEEDS_ADDRESS:
            given = self.return_address
            if given is None or not all((given.province, given.city, given.county, given.address)):
                raise PermanentError("顺丰退回需要退货地址：请配置 [carrier.sf.return_address]")
            address = NewDestAddress.model_validate(given.model_dump())
        return WantedIntercept(
            waybillNo=str(data["tracking_no"]),
            serviceCode=self.service_code,
            role=self.role,
            payMode=self.pay_mode,
            monthlyCardNo=self.monthly_card if self.pay_mode in MONTHLY else "",
            newDestAddress=address,
        )


def from_settings(
    settings: SfSettings,
    session: aiohttp.ClientSession,
    clock: Clock,
    ledger: Ledger | None = None,
) -> SfInterceptor:
    client = SfClient(
        session,
        api_base=settings.api_base,
        partner_id=settings.partner_id,
        checkword=settings.checkword.get_secret_value(),
        clock=clock,
        timeout_s=settings.timeout_s,
    )
    return SfInterceptor(
        client,
        monthly_card=settings.monthly_card,
        service_code=settings.service_code,
        role=settings.role,
        pay_mode=settings.pay_mode,
        return_address=settings.return_address,
        ledger=ledger,
    )

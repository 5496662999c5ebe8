"""快递100 `interceptOrder`: one carrier-agnostic intercept, acting with the merchant's own
courier account, as the `Carrier` port (`[carrier] mode = "kuaidi100"` or a route to it).

The answer only says 快递100 took the request ("accepted", with its taskId); the outcome comes
later in the result callback (`integrations.kuaidi100.callback`). Each key is sent at most once:
a lost answer is never followed by a second request (there is no public query to ask first).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from handlers.ports import CarrierAnswer
from integrations.carrier.ledger import SENDING, Ledger, MemoryLedger
from integrations.carrier.names import carrier_code, kuaidi100_code
from integrations.kuaidi100.models import INTERCEPT_METHOD, ORDER_PATH, InterceptParam, OrderAnswer
from integrations.kuaidi100.settings import CourierAccountSettings, Kuaidi100Settings
from integrations.kuaidi100.signing import order_sign

log = logging.getLogger(__name__)

SUCCESS = "200"


@dataclass(frozen=True)
class CourierAccount:
    """The merchant's 电子面单 account at one carrier (what `partnerId`/`partnerKey`/… carry)."""

    partner_id: str
    partner_key: str = ""
    partner_secret: str = ""
    partner_name: str = ""
    code: str = ""
    net: str = ""
    order_role: str = ""
    pay_type: str = ""
    app_key: str = ""
    app_secret: str = ""

    @classmethod
    def from_settings(cls, s: CourierAccountSettings) -> CourierAccount:
        return cls(
            partner_id=s.partner_id,
            partner_key=s.partner_key.get_secret_value(),
            partner_secret=s.partner_secret.get_secret_value(),
            partner_name=s.partner_name,
            code=s.code,
            net=s.net,
            order_role=s.order_role,
            pay_type=s.pay_type,
            app_key=s.app_key,
            app_secret=s.app_secret.get_secret_value(),
        )


class Kuaidi100Interceptor:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        key: str,
        secret: str,
        clock: Clock,
        courier: dict[str, CourierAccount],
        intercept_type: str,
        timeout_s: float = 10.0,
        callback_url: str = "",
        callback_salt: str = "",
        ledger: Ledger | None = None,
    ) -> None:
        self.session = session
        self.url = api_base.rstrip("/") + ORDER_PATH
        self.key = key
        self.secret = secret
        self.clock = clock
        self.courier = {carrier_code(name): account for name, account in courier.items()}
        self.intercept_type = intercept_type
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.callback_url = callback_url
        self.callback_salt = callback_salt
        self.ledger = ledger if ledger is not None else MemoryLedger()

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        seen = await self.ledger.get(key)
        if seen is not None:
            return _again(seen)
        param = self.param(data)
        if isinstance(param, CarrierAnswer):
            return param
        form = self.form(param.text())
        await self.ledger.put(key, {"state": SENDING})
        answer = await self._send(key, form)
        await self.ledger.put(key, {"state": answer.status, "detail": answer.detail})
        return answer

    def param(self, data: dict[str, Any]) -> InterceptParam | CarrierAnswer:
        carrier = carrier_code(str(data.get("carrier", "")))
        company = kuaidi100_code(carrier)
        if not company:
            return CarrierAnswer(
                "failed", f"快递100不支持这家快递（{carrier or '未知'}），请人工拦截"
            )
        account = self.courier.get(carrier)
        if account is None:
            raise PermanentError(
                f"快递100拦截需要商家在{carrier}的快递账号：请配置 [carrier.kuaidi100.couriers.{carrier}]"
            )
        return InterceptParam(
            kuaidicom=company,
            kuaidinum=str(data["tracking_no"]),
            interceptType=self.intercept_type,
            partnerId=account.partner_id,
            partnerKey=account.partner_key,
            partnerSecret=account.partner_secret,
            partnerName=account.partner_name,
            code=account.code,
            net=account.net,
            reason=str(data.get("reason") or "买家退款，申请退回")[:100],
            orderRole=account.order_role,
            interceptPayType=account.pay_type,
            callbackUrl=self.callback_url,
            salt=self.callback_salt,
            appKey=account.app_key,
            appSecret=account.app_secret,
        )

    def form(self, param: str) -> dict[str, str]:
        t = str(int(self.clock.now().timestamp() * 1000))
        return {
            "key": self.key,
            "method": INTERCEPT_METHOD,
            "t": t,
            "sign": order_sign(param, t, self.key, self.secret),
            "param": param,
        }

    async def _send(self, key: str, form: dict[str, str]) -> CarrierAnswer:
        try:
            async with self.session.post(self.url, data=form, timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            await self.ledger.forget(key)
            raise RetryableError(f"快递100 unreachable ({type(exc).__name__})") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PermanentError(_lost(f"没有回答（{type(exc).__name__}）")) from exc
        if status >= 500 or status == 429:
            await self.ledger.forget(key)
            raise RetryableError(f"快递100 interceptOrder: HTTP {status}")
        if status != 200:
            await self.ledger.forget(key)
            raise PermanentError(f"快递100 interceptOrder: HTTP {status} {text[:200]}")
        try:
            answer = OrderAnswer.model_validate(json.loads(text))
        except ValueError as exc:
            raise PermanentError(_lost("回答无法读取")) from exc
        if answer.code == SUCCESS:
            task = f"（任务 {answer.task_id}）" if answer.task_id else ""
            return CarrierAnswer("accepted", f"快递100已受理拦截{task}")
        if answer.code.startswith("5") and len(answer.code) == 3:
            await self.ledger.forget(key)
            raise RetryableError(f"快递100 interceptOrder: {answer.code} {answer.message}")
        log.info("kuaidi100 refused intercept %s: %s %s", key, answer.code, answer.message)
        return CarrierAnswer("failed", f"快递100拒绝拦截：{answer.message or answer.code}")


def _again(seen: dict[str, Any]) -> CarrierAnswer:
    state = seen.get("state")
    if state in ("accepted", "intercepted", "failed"):
        return CarrierAnswer(state, str(seen.get("detail", "")))
    raise PermanentError(_lost("上次没有收到回答"))


def _lost(why: str) -> str:
    return (
        f"快递100 拦截申请已发出但{why}，可能已受理：为免重复拦截不再重发，"
        "请在快递100或快递公司后台核实"
    )


def from_settings(
    settings: Kuaidi100Settings,
    session: aiohttp.ClientSession,
    clock: Clock,
    ledger: Ledger | None = None,
) -> Kuaidi100Interceptor:
    return Kuaidi100Interceptor(
        session,
        api_base=settings.api_base,
        key=settings.key,
        secret=settings.secret.get_secret_value(),
        clock=clock,
        courier={k: CourierAccount.from_settings(v) for k, v in settings.couriers.items()},
        intercept_type=settings.intercept_type,
        timeout_s=settings.timeout_s,
        callback_url=settings.callback_url,
        callback_salt=settings.callback_salt.get_secret_value(),
        ledger=ledger,
    )

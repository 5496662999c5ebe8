"""`TopClient`: one signed POST to TOP's router/rest per call, and TOP's errors as ours.

Answers are `{"<method minus taobao., dots as _>_response": {...}}` or
`{"error_response": {"code", "msg", "sub_code", "sub_msg", "request_id"}}` (bububa/opentaobao
model/response.go). Codes: 7 App Call Limited and isp.* / HTTP 5xx / timeouts → RetryableError;
26/27 missing or invalid session → InvalidSessionError (refresh, else the shop must authorise
again); 25 invalid signature and isv.* business refusals → TopError (permanent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from integrations.shop.connector import AuthorizationError
from integrations.taobao.signing import SignMethod, top_sign

BEIJING = ZoneInfo("Asia/Shanghai")
SESSION_CODES = frozenset({26, 27})
LIMIT_CODES = frozenset({7})
# Codes the TOP gateway answers when it, not the business, failed (service unavailable,
# remote service timeout, remote service error with an isp sub code).
PLATFORM_BUSY_CODES = frozenset({520, 10})

Param = str | int | bool | None


class TopError(PermanentError):
    """A refusal TOP gave with its codes, for the connector to read."""

    def __init__(
        self, method: str, code: int, msg: str, sub_code: str = "", sub_msg: str = ""
    ) -> None:
        super().__init__(f"{method}: {code} {msg} {sub_code} {sub_msg}".strip())
        self.method = method
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg

    @property
    def said(self) -> str:
        return self.sub_msg or self.msg or self.sub_code or str(self.code)


class InvalidSessionError(AuthorizationError):
    """The session (access token) is missing, expired or revoked."""


def response_key(method: str) -> str:
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


def param_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TopClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str,
        app_key: str,
        app_secret: str,
        clock: Clock,
        sign_method: SignMethod = "hmac-sha256",
        timeout_s: float = 10.0,
    ) -> None:
        self.session = session
        self.url = url
        self.app_key = app_key
        self.app_secret = app_secret
        self.clock = clock
        self.sign_method: SignMethod = sign_method
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def form(self, method: str, params: Mapping[str, Param], session: str | None) -> dict[str, str]:
        """The signed form of one call."""
        now = self.clock.now().astimezone(BEIJING)
        form = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": f"{now:%Y-%m-%d %H:%M:%S}",
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        if session:
            form["session"] = session
        form.update({k: param_text(v) for k, v in params.items() if v is not None})
        form["sign"] = top_sign(form, self.app_secret, self.sign_method)
        return form

    async def call(
        self, method: str, params: Mapping[str, Param], session: str | None = None
    ) -> dict[str, Any]:
        form = self.form(method, params, session)
        try:
            async with self.session.post(
                self.url,
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError as exc:
            raise RetryableError(f"{method}: 淘宝接口超时") from exc
        except aiohttp.ClientError as exc:
            raise RetryableError(f"{method}: 淘宝接口连不上（{type(exc).__name__}）") from exc
        if status >= 500:
            raise RetryableError(f"{method}: 淘宝接口 HTTP {status}")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise RetryableError(f"{method}: 淘宝接口回了读不懂的内容（HTTP {status}）") from exc
        if not isinstance(document, dict):
            raise RetryableError(f"{method}: 淘宝接口回了读不懂的内容")
        error = document.get("error_response")
        if isinstance(error, dict):
            raise self._error(method, error)
        node = document.get(response_key(method))
        if not isinstance(node, dict):
            raise RetryableError(f"{method}: 回答里没有 {response_key(method)}")
        return node

    @staticmethod
    def _error(method: str, error: Mapping[str, Any]) -> Exception:
        try:
            code = int(error.get("code", 0))
        except (TypeError, ValueError):
            code = 0
        msg = str(error.get("msg", ""))
        sub_code = str(error.get("sub_code", ""))
        sub_msg = str(error.get("sub_msg", ""))
        if code in SESSION_CODES:
            return InvalidSessionError(
                f"淘宝授权已失效（{code} {sub_msg or msg}）：请店铺重新授权应用"
            )
        if code in LIMIT_CODES or "call-limited" in sub_code or "flow-limit" in sub_code:
            return RetryableError(f"{method}: 淘宝限流（{code} {sub_code}）", defer=60.0)
        if code in PLATFORM_BUSY_CODES or sub_code.startswith("isp."):
            return RetryableError(
                f"{method}: 淘宝服务暂不可用（{code} {sub_code} {sub_msg}）".strip()
            )
        return TopError(method, code, msg, sub_code, sub_msg)

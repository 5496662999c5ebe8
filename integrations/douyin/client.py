"""The 抖店 open-platform client: signed calls, the shop's access token, and vendor codes → our errors.

Every call is `POST {base}/{path}?app_key&method&timestamp&v=2&sign&sign_method[&access_token]`
with the business parameters as the JSON body (`param_json`), as the official Go SDK sends it
(`core/doudian_op_api_client.go`). Answer codes (renhonghai/doudian-sdk `ErrNoConstant.php`):
10000 ok; 20000 service error, 60000 rate limited, 90000 unknown → retry; 30001 no permission
(`dop.authorization-*`: the shop's grant is gone) and 30002 IP not allow-listed → permanent;
40003 carries both `isv.access-token-expired` (refresh once) and `isv.signature-invalid`
(permanent); 50001 token errors. Business refusals come back as their own code or as
`sub_code = "isv.business-failed:<code>"`: `DouyinApiError.business` is that code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import aiohttp

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError
from integrations.douyin import signing
from integrations.douyin.models import (
    AfterSaleDetail,
    Answer,
    InterceptData,
    ListData,
    OperateData,
    OperateItem,
    RejectReasonData,
    RejectReasonItem,
    TokenData,
)
from integrations.shop.connector import AuthorizationError, Tokens, TokenStore
from integrations.shop.tokens import TokenKeeper

log = logging.getLogger(__name__)

OK = 10000
RETRY_CODES = frozenset({20000, 60000, 90000})
TOKEN_EXPIRED = frozenset(
    {"isv.access-token-expired", "isv.access-token-no-existed", "isv.access-token-invalid"}
)
# afterSale/operate takes at most 20 items and applies all of them or none (api-docs/17/560).
MAX_OPERATE_ITEMS = 20
MAX_PAGE_SIZE = 100
# Refresh this long before the token runs out (tokens live 7 days, refresh tokens 14).
REFRESH_MARGIN = timedelta(minutes=10)


class DouyinApiError(PermanentError):
    """An answer other than success that is not transient: `code`, `sub_code`, the text."""

    def __init__(self, code: int, sub_code: str, message: str) -> None:
        super().__init__(
            f"抖店拒绝了请求：{message or sub_code or code}（{code} {sub_code}）".strip()
        )
        self.code = code
        self.sub_code = sub_code
        self.text = message

    @property
    def business(self) -> int:
        """The business code: `11001` of `isv.business-failed:11001`, else the answer code."""
        _, _, tail = self.sub_code.rpartition(":")
        return int(tail) if tail.isdigit() else self.code


class _TokenExpiredError(Exception):
    pass


class DouyinClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_key: str,
        app_secret: str,
        base_url: str,
        clock: Clock,
        tokens: TokenStore,
        configured: Tokens | None = None,
        shop_id: str = "",
        shop: str = "",
        sign_method: str = "hmac-sha256",
        timeout_s: float = 10.0,
    ) -> None:
        self.session = session
        self.app_key = app_key
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.tokens = tokens
        self.configured = configured
        self.keeper = TokenKeeper(tokens, configured, clock, REFRESH_MARGIN, self._renew)
        self.shop_id = shop_id
        self.shop = shop  # our id for the shop, named in AuthorizationError
        self.sign_method = sign_method
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    # -- typed methods --------------------------------------------------------------

    async def token_create(self) -> TokenData:
        """自用型 app: `grant_type=authorization_self` with the shop id (no code)."""
        params: dict[str, Any] = {"code": "", "grant_type": "authorization_self"}
        if self.shop_id.isdigit():
            params["shop_id"] = int(self.shop_id)
        return TokenData.model_validate(await self._token_call("token/create", params))

    async def token_refresh(self, refresh_token: str) -> TokenData:
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return TokenData.model_validate(await self._token_call("token/refresh", params))

    async def aftersale_detail(self, aftersale_id: str) -> AfterSaleDetail:
        data = await self.call("afterSale/Detail", {"after_sale_id": aftersale_id})
        return AfterSaleDetail.model_validate(data)

    async def aftersale_list(
        self, *, update_start_time: int, update_end_time: int, page: int, size: int
    ) -> ListData:
        if not 0 < size <= MAX_PAGE_SIZE:
            raise ValueError(f"afterSale/List size is 1..{MAX_PAGE_SIZE}")
        params = {
            "update_start_time": update_start_time,
            "update_end_time": update_end_time,
            "order_by": ["update_time asc"],
            "page": page,
            "size": size,
        }
        return ListData.model_validate(await self.call("afterSale/List", params))

    async def operate(self, op_type: int, items: list[OperateItem]) -> OperateData:
        if not 0 < len(items) <= MAX_OPERATE_ITEMS:
            raise ValueError(f"afterSale/operate takes 1..{MAX_OPERATE_ITEMS} items")
        params = {
            "type": op_type,
            "items": [item.model_dump(exclude_none=True) for item in items],
        }
        return OperateData.model_validate(await self.call("afterSale/operate", params))

    async def reject_reason_codes(self, aftersale_id: str = "") -> list[RejectReasonItem]:
        params: dict[str, Any] = {}
        if aftersale_id.isdigit():
            params["aftersale_id"] = int(aftersale_id)
        data = await self.call("afterSale/rejectReasonCodeList", params)
        return RejectReasonData.model_validate(data or {}).items

    async def apply_logistics_intercept(
        self, aftersale_id: str, company_code: str, tracking_no: str
    ) -> InterceptData:
        params = {
            "after_sale_id": int(aftersale_id),
            "op_from": 1,  # 1 商家, 3 客服
            "intercept_targets": [{"company_code": company_code, "tracking_no": tracking_no}],
        }
        data = await self.call("afterSale/applyLogisticsIntercept", params)
        return InterceptData.model_validate(data or {})

    # -- the token ------------------------------------------------------------------

    async def access_token(self) -> str:
        return await self.keeper.access_token()

    async def _renew(self, tokens: Tokens | None) -> Tokens:
        data: TokenData | None = None
        if tokens is not None and tokens.refresh_token:
            try:
                data = await self.token_refresh(tokens.refresh_token)
            except DouyinApiError as exc:
                if not self.shop_id:
                    raise AuthorizationError(
                        f"抖店授权已失效，刷新失败：{exc.text or exc.sub_code}。请在抖店重新授权应用",
                        shop=self.shop,
                    ) from exc
                log.warning("抖店 token refresh refused (%s); creating a new token", exc.sub_code)
        if data is None:
            if not self.shop_id:
                raise AuthorizationError(
                    "抖店没有可用的 access_token，也没有 shop_id 可以自助授权", shop=self.shop
                )
            try:
                data = await self.token_create()
            except DouyinApiError as exc:
                raise AuthorizationError(
                    f"抖店授权失败：{exc.text or exc.sub_code}。请确认应用已获店铺授权",
                    shop=self.shop,
                ) from exc
        fresh = Tokens(
            access_token=data.access_token,
            refresh_token=data.refresh_token or (tokens.refresh_token if tokens else ""),
            expires_at=self.clock.now() + timedelta(seconds=data.expires_in)
            if data.expires_in
            else None,
        )
        await self.tokens.save(fresh)
        return fresh

    # -- the wire -------------------------------------------------------------------

    async def call(self, path: str, params: Mapping[str, Any]) -> Any:
        """The `data` of a successful call with the shop's token; one refresh on expiry."""
        token = await self.access_token()
        try:
            return await self._request(path, params, token)
        except _TokenExpiredError:
            token = await self.keeper.renewed_after_rejection(token)
        try:
            return await self._request(path, params, token)
        except _TokenExpiredError as exc:
            raise AuthorizationError(
                "抖店 access_token 刷新后仍被拒绝：请在抖店重新授权应用", shop=self.shop
            ) from exc

    async def _token_call(self, path: str, params: Mapping[str, Any]) -> Any:
        try:
            return await self._request(path, params, None)
        except _TokenExpiredError as exc:
            raise DouyinApiError(40003, "isv.access-token-expired", "token 已过期") from exc

    def signed_query(self, path: str, body: str, token: str | None) -> dict[str, str]:
        method = path.strip("/").replace("/", ".")
        timestamp = str(int(self.clock.now().timestamp()))
        query = {
            "app_key": self.app_key,
            "method": method,
            "timestamp": timestamp,
            "v": "2",
            "sign": signing.sign(
                self.app_key,
                self.app_secret,
                method,
                body,
                timestamp,
                sign_method=self.sign_method,
            ),
            "sign_method": self.sign_method,
        }
        if token is not None:
            query["access_token"] = token
        return query

    async def _request(self, path: str, params: Mapping[str, Any], token: str | None) -> Any:
        body = signing.param_json(params)
        url = f"{self.base_url}/{path.strip('/')}"
        try:
            async with self.session.post(
                url,
                params=self.signed_query(path, body, token),
                data=body.encode(),
                headers={"Content-Type": "application/json", "x-open-no-old-err-code": "1"},
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise RetryableError(f"抖店 {path}: HTTP {resp.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryableError(f"抖店 {path}: 没有应答（{type(exc).__name__}）") from exc
        try:
            answer = Answer.model_validate(json.loads(text))
        except ValueError as exc:
            raise RetryableError(f"抖店 {path}: 应答无法解析") from exc
        if answer.code == OK:
            return answer.data
        return self._refusal(path, answer)

    def _refusal(self, path: str, answer: Answer) -> Any:
        code, sub = answer.code, answer.sub_code
        said = answer.sub_msg or answer.msg
        if code in RETRY_CODES:
            raise RetryableError(f"抖店 {path}: 暂时不可用（{code} {sub} {said}）".strip())
        if sub in TOKEN_EXPIRED:
            raise _TokenExpiredError(sub)
        if code == 30002 or sub == "isv.invalid_ip":
            raise PermanentError(
                f"抖店拒绝了本机 IP（{code} {sub}）：请把服务器出口 IP 加入抖店应用的 IP 白名单"
            )
        if sub == "isv.signature-invalid":
            raise PermanentError(
                f"抖店签名校验失败（{code} {sub}）：请核对 app_key / app_secret 与签名方式"
            )
        if sub.startswith("dop.authorization-"):
            raise AuthorizationError(
                f"抖店店铺授权已失效或被关闭（{sub}）：请商家重新授权应用", shop=self.shop
            )
        if code == 30001:
            raise PermanentError(f"抖店应用没有调用 {path} 的权限（{sub}）：请先申请对应的权限包")
        raise DouyinApiError(code, sub, said)

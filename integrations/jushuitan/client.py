"""The 聚水潭 open-platform client: signed form calls, the token, vendor codes → our errors.

Every call is `POST {api_base}{path}` as `application/x-www-form-urlencoded` with
`access_token, app_key, biz` (the business JSON, compact), `charset=utf-8, timestamp` (unix s),
`version=2, sign` (ieu/jst-java `AbstractJstBizClient`, kocotree/jushuitan-mcp `client.py`).
Answer codes (ieu/jst-java `JstErrorCode`, from the docs' 错误码 page): 0 ok; 10 bad sign,
110 IP not allow-listed, 140 timestamp off by >15 min, 190 no API permission → permanent;
100 token invalid or expired → refresh once; 150 a 服务商 app may not refresh (since
2023-08-15) → the merchant authorises again; 199 (>5/s) and 200 (>100/min) → retry later.
Anything else non-zero is a business refusal (`JushuitanApiError`).

The first tokens (docId=23, 25 as ieu/jst-java `JstAccessTokenRequest` quotes them): a
merchant's own app (自研应用) is authorised silently once approved and takes them from
getInitToken with a 6-character code it makes up — done on first use when none are stored; a
服务商 app sends the merchant to the authorisation page and exchanges the code it hands back
at accessToken (`refundops connect jushuitan --code`).
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ValidationError

from handlers.clock import Clock
from handlers.errors import AuthorizationError, PermanentError, RetryableError
from integrations.jushuitan import signing
from integrations.jushuitan.models import (
    Answer,
    CancelBiz,
    OrderPage,
    OrderQueryBiz,
    QuestionsBiz,
    QuestionsData,
    RefundPage,
    RefundQueryBiz,
    TokenData,
)
from integrations.jushuitan.settings import WarehouseSettings
from integrations.shop.connector import Tokens, TokenStore
from integrations.shop.tokens import TokenKeeper

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

QUESTIONS = "/open/webapi/orderapi/questionorder/questions"
CANCEL = "/open/jushuitan/orderbyoid/cancel"
ORDERS = "/open/orders/single/query"
REFUNDS = "/open/refund/single/query"
REFRESH = "/openWeb/auth/refreshToken"
INIT_TOKEN = "/openWeb/auth/getInitToken"
CODE_TOKEN = "/openWeb/auth/accessToken"
WHO = "聚水潭"

OK = 0
BAD_SIGN = 10
TOKEN_INVALID = 100
IP_NOT_ALLOWED = 110
BAD_TIMESTAMP = 140
REFRESH_FORBIDDEN = 150
NO_PERMISSION = 190
# getInitToken refused to a 服务商 app: reported by an integrator, not in the published codes.
ONLY_SELF_BUILT = 21024
RATE_PER_SECOND = 199
RATE_PER_MINUTE = 200
# Refresh this long before the token runs out (tokens live ~30 days; the SDK keeps 24 h).
REFRESH_MARGIN = timedelta(hours=24)


class JushuitanApiError(PermanentError):
    """A business refusal: `code` and JST's own words."""

    def __init__(self, path: str, code: int, message: str) -> None:
        super().__init__(f"聚水潭拒绝了请求：{message or code}（{path} {code}）")
        self.path = path
        self.code = code
        self.text = message


class _TokenInvalidError(Exception):
    pass


def beijing(when: datetime) -> str:
    """A moment as JST writes times: Beijing wall time, `yyyy-MM-dd HH:mm:ss`."""
    return when.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


class JushuitanClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        app_key: str,
        app_secret: str,
        clock: Clock,
        tokens: TokenStore,
        timeout_s: float = 10.0,
        configured: Tokens | None = None,
    ) -> None:
        self.session = session
        self.api_base = api_base.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self.clock = clock
        self.tokens = tokens
        self.configured = configured
        self.keeper = TokenKeeper(tokens, configured, clock, REFRESH_MARGIN, self._renew)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    # -- typed methods --------------------------------------------------------------

    @classmethod
    def of(
        cls,
        settings: WarehouseSettings,
        session: aiohttp.ClientSession,
        tokens: TokenStore,
        clock: Clock,
    ) -> JushuitanClient:
        """The client `[warehouse]` describes; its configured tokens are the first ones."""
        configured = None
        if settings.access_token.get_secret_value():
            configured = Tokens(
                settings.access_token.get_secret_value(),
                settings.refresh_token.get_secret_value(),
            )
        return cls(
            session,
            api_base=settings.api_base,
            app_key=settings.app_key,
            app_secret=settings.app_secret.get_secret_value(),
            clock=clock,
            tokens=tokens,
            timeout_s=settings.timeout_s,
            configured=configured,
        )

    async def questions(
        self, o_ids: list[int], *, question_type: str, question_desc: str = "", channel: str = ""
    ) -> QuestionsData:
        """订单转异常 (≤50 internal order ids); `data.message` names the orders it refused."""
        biz = QuestionsBiz(
            o_ids=o_ids,
            question_type=question_type,
            question_desc=question_desc,
            channel=channel,
        )
        return QuestionsData.model_validate(await self.call(QUESTIONS, biz) or {})

    async def cancel(self, o_ids: list[int], *, cancel_type: str, remark: str = "") -> None:
        """取消订单 by internal order id (≤50); JST answers only as a whole."""
        await self.call(CANCEL, CancelBiz(o_ids=o_ids, cancel_type=cancel_type, remark=remark))

    async def orders(self, so_ids: list[str], *, page_index: int = 1) -> OrderPage:
        """The ERP orders of ≤20 platform order numbers (one so_id can be several split orders)."""
        biz = OrderQueryBiz(so_ids=so_ids, page_index=page_index)
        return OrderPage.model_validate(await self.call(ORDERS, biz) or {})

    async def refunds(
        self,
        begin: datetime,
        end: datetime,
        *,
        page_index: int = 1,
        page_size: int = 50,
        shop_id: int | None = None,
    ) -> RefundPage:
        """退货退款查询 by modified time, a window of at most 7 days."""
        if end - begin > timedelta(days=7) or end < begin:
            raise ValueError("refund/single/query takes a modified window of 0..7 days")
        biz = RefundQueryBiz(
            modified_begin=beijing(begin),
            modified_end=beijing(end),
            page_index=page_index,
            page_size=page_size,
            shop_id=shop_id,
        )
        return RefundPage.model_validate(await self.call(REFUNDS, biz) or {})

    # -- the token ------------------------------------------------------------------

    async def access_token(self) -> str:
        return await self.keeper.access_token()

    async def connect(self, code: str = "") -> Tokens:
        """The first tokens, kept in the store: from the merchant's `code` (a 服务商 app's
        authorisation page), else from getInitToken (the merchant's own app)."""
        async with self.tokens.lock():
            fresh = await (self._exchange(code) if code else self._init())
            self.keeper.held = fresh
            return fresh

    async def _init(self) -> Tokens:
        code = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(6))
        return await self._grant(INIT_TOKEN, code)

    async def _exchange(self, code: str) -> Tokens:
        return await self._grant(CODE_TOKEN, code)

    async def _grant(self, path: str, code: str) -> Tokens:
        form = {
            "app_key": self.app_key,
            "timestamp": str(int(self.clock.now().timestamp())),
            "grant_type": "authorization_code",
            "charset": "utf-8",
            "code": code,
        }
        answer = await self._post(path, signing.signed(self.app_secret, form))
        if answer.code == ONLY_SELF_BUILT:
            raise AuthorizationError(
                "聚水潭：这是服务商应用，不能静默取得 token（21024）。请运行 "
                "refundops connect jushuitan --auth-url，让商家在授权页确认后用 --code 换取",
                shop=WHO,
            )
        if answer.code != OK:
            hint = (
                "授权页给的 code 只能在 15 分钟内用一次：请重新授权后再用 --code 换取"
                if path == CODE_TOKEN
                else "请确认 warehouse.app_key / app_secret 属于已审核通过的自研应用"
            )
            raise AuthorizationError(
                f"聚水潭授权失败：{answer.msg or answer.code}（{answer.code}）。{hint}",
                shop=WHO,
            )
        fresh = self._tokens_of(answer, previous="")
        await self.tokens.save(fresh)
        log.info("聚水潭 tokens granted by %s", path.rsplit("/", 1)[-1])
        return fresh

    def _tokens_of(self, answer: Answer, *, previous: str) -> Tokens:
        try:
            data = TokenData.model_validate(answer.data)
        except ValidationError as exc:
            raise RetryableError("聚水潭 token 应答缺少 access_token") from exc
        return Tokens(
            access_token=data.access_token,
            # The refresh token is single-use: the answer carries the next one.
            refresh_token=data.refresh_token or previous,
            expires_at=self.clock.now() + timedelta(seconds=data.expires_in)
            if data.expires_in
            else None,
        )

    async def _renew(self, tokens: Tokens | None) -> Tokens:
        if tokens is None:
            # Nothing stored and nothing configured: the first authorisation.
            return await self._init()
        if not tokens.refresh_token:
            raise AuthorizationError(
                "聚水潭 access_token 已失效，且没有 refresh_token 可以刷新："
                "请运行 refundops connect jushuitan 重新取得授权",
                shop=WHO,
            )
        form = {
            "app_key": self.app_key,
            "timestamp": str(int(self.clock.now().timestamp())),
            "grant_type": "refresh_token",
            "charset": "utf-8",
            "refresh_token": tokens.refresh_token,
            "scope": "all",
        }
        answer = await self._post(REFRESH, signing.signed(self.app_secret, form))
        if answer.code != OK:
            why = (
                "服务商应用不能刷新 token，需商户重新授权"
                if answer.code == REFRESH_FORBIDDEN
                else ""
            )
            raise AuthorizationError(
                f"聚水潭刷新 token 失败：{why or answer.msg or answer.code}（{answer.code}）。"
                "请运行 refundops connect jushuitan 重新取得授权",
                shop=WHO,
            )
        fresh = self._tokens_of(answer, previous=tokens.refresh_token)
        await self.tokens.save(fresh)
        log.info("聚水潭 access_token refreshed")
        return fresh

    # -- the wire -------------------------------------------------------------------

    async def call(self, path: str, biz: BaseModel) -> Any:
        """The `data` of a successful call; one token refresh when JST says 100."""
        token = await self.access_token()
        try:
            return await self._business(path, biz, token)
        except _TokenInvalidError:
            token = await self.keeper.renewed_after_rejection(token)
        try:
            return await self._business(path, biz, token)
        except _TokenInvalidError as exc:
            raise AuthorizationError(
                "聚水潭刷新后的 access_token 仍被拒绝（100）：请运行 refundops connect jushuitan "
                "重新取得授权",
                shop=WHO,
            ) from exc

    def form(self, biz: BaseModel, token: str) -> dict[str, str]:
        params = {
            "access_token": token,
            "app_key": self.app_key,
            "biz": json.dumps(
                biz.model_dump(exclude_none=True), ensure_ascii=False, separators=(",", ":")
            ),
            "charset": "utf-8",
            "timestamp": str(int(self.clock.now().timestamp())),
            "version": "2",
        }
        return signing.signed(self.app_secret, params)

    async def _business(self, path: str, biz: BaseModel, token: str) -> Any:
        answer = await self._post(path, self.form(biz, token))
        if answer.code == OK:
            return answer.data
        if answer.code == TOKEN_INVALID:
            raise _TokenInvalidError(answer.msg)
        raise refusal(path, answer.code, answer.msg)

    async def _post(self, path: str, form: Mapping[str, str]) -> Answer:
        try:
            async with self.session.post(
                self.api_base + path,
                data=dict(form),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self.timeout,
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise RetryableError(f"聚水潭 {path}: HTTP {resp.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryableError(f"聚水潭 {path}: 没有应答（{type(exc).__name__}）") from exc
        try:
            return Answer.model_validate_json(text)
        except ValidationError as exc:
            raise RetryableError(f"聚水潭 {path}: 应答无法解析") from exc


def authorization_page(settings: WarehouseSettings, now: datetime, state: str = "") -> str:
    """Where a 服务商 app sends the merchant to approve it; the page hands back a `code`
    (the form is signed like any other: app_key, timestamp, charset[, state])."""
    form = {
        "app_key": settings.app_key,
        "timestamp": str(int(now.timestamp())),
        "charset": "utf-8",
        "state": state,
    }
    given = {k: v for k, v in form.items() if v}
    signed = signing.signed(settings.app_secret.get_secret_value(), given)
    return f"{settings.auth_page}?{urlencode(signed)}"


def refusal(path: str, code: int, message: str) -> Exception:
    """The error a non-zero answer code means (100 is handled by the caller)."""
    said = message or str(code)
    if code in (RATE_PER_SECOND, RATE_PER_MINUTE):
        defer = 1.0 if code == RATE_PER_SECOND else 60.0
        return RetryableError(f"聚水潭调用频次超限（{code}）：{said}", defer=defer)
    if code == BAD_SIGN:
        return PermanentError(
            f"聚水潭验签失败（{code}）：请确认 warehouse.app_secret 与 app_key 是同一个应用的"
        )
    if code == NO_PERMISSION:
        return PermanentError(
            f"聚水潭应用没有接口权限（{code} {path}）：请在开放平台 控制台 → 应用详情 → "
            "API权限申请 中申请该接口"
        )
    if code == IP_NOT_ALLOWED:
        return PermanentError(
            f"聚水潭拒绝了本机 IP（{code}）：请在开放平台 应用详情 → IP白名单 中加入服务器出口 IP"
        )
    if code == BAD_TIMESTAMP:
        return PermanentError(
            f"聚水潭认为请求时间不对（{code}）：请校准服务器时钟（误差须在 15 分钟内）"
        )
    if code == REFRESH_FORBIDDEN:
        return AuthorizationError(
            f"聚水潭：服务商应用不能刷新 token，需商户重新授权（{code}）", shop=WHO
        )
    return JushuitanApiError(path, code, message)

"""Calls to DingTalk: the open API (token, cards, robot messages, stream gateway), session
webhooks and custom robots, with DingTalk's error codes mapped onto handlers.errors.

Open API answers are HTTP status + `{"code","message"}`; robot endpoints answer HTTP 200
with `{"errcode","errmsg"}`. The access token is shared through coordination (Redis when
configured) and refreshed under a lock by one instance at a time.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from pydantic import ValidationError
from yarl import URL

from handlers.clock import Clock
from handlers.errors import PermanentError, RetryableError, ThrottledError
from integrations.dingtalk.models import (
    CARD_TOPIC,
    ROBOT_TOPIC,
    AccessToken,
    Connection,
    CreateAndDeliver,
    CreateAndDeliverAnswer,
    GroupMessage,
    OpenConnection,
    Outbound,
    RegisterCallback,
    RobotSend,
    Subscription,
    Text,
    UpdateCard,
    UserMessage,
    WorkNotice,
    WorkNoticeAnswer,
    WorkNoticeMessage,
)
from integrations.dingtalk.render import encode
from integrations.dingtalk.settings import DingtalkSettings
from integrations.dingtalk.signing import robot_query
from storage.coordination import Coordination

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-acs-dingtalk-access-token"
SESSION_EXPIRED = 300001
ROBOT_THROTTLED = 130101
# DingTalk mutes a custom robot for 10 minutes once it passes 20 messages a minute.
ROBOT_THROTTLE_S = 600.0
BUSY = -1
TOKEN_MARGIN_S = 300
UA = "refundops-dingtalk/1.0"
# createAndDeliver's error table: an outTrackId that already has a card.
CARD_EXISTS = "param.cardAlreadyExist"
DINGTALK_OAPI = "https://oapi.dingtalk.com"
SESSION_PATH = "/robot/sendBySession"
WORK_NOTICE_PATH = "/topapi/message/corpconversation/asyncsend_v2"
# asyncsend_v2 takes the recipients as one comma-separated userid_list, at most 100 of them.
WORK_NOTICE_USERS = 100
# oapi's token errors: 40014 不合法的access_token, 42001 access_token 已过期.
OAPI_TOKEN_ERRORS = frozenset({40014, 42001})


class SessionExpiredError(PermanentError):
    """The message's session webhook is gone (300001): answer through the open API instead."""


class CardExistsError(PermanentError):
    """createAndDeliver refused an outTrackId that already has a card (ours or not: never
    update it in its place)."""


def session_webhook_allowed(url: str, oapi_base: str) -> bool:
    """Whether `url` is a session webhook on DingTalk's own robot host (`https://oapi.dingtalk.com`
    or the configured `oapi_base`: same scheme, host and port), without user info, at
    `/robot/sendBySession`; parsed as aiohttp will send it. Any other URL in a message body
    was chosen by whoever wrote the body."""
    target = _absolute(url)
    if target is None or target.user is not None or target.password is not None:
        return False
    if target.path != SESSION_PATH:
        return False
    hosts = [h for h in (_absolute(DINGTALK_OAPI), _absolute(oapi_base)) if h is not None]
    return any(
        (target.scheme, target.host, target.port) == (h.scheme, h.host, h.port) for h in hosts
    )


def _absolute(url: str) -> URL | None:
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.is_absolute() and parsed.host else None


class DingtalkClient:
    def __init__(
        self, session: aiohttp.ClientSession, settings: DingtalkSettings, coord: Coordination
    ) -> None:
        self.session = session
        self.settings = settings
        self.coord = coord
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout_s)

    @property
    def robot_code(self) -> str:
        return self.settings.robot_code or self.settings.app_key

    @property
    def _token_key(self) -> str:
        return f"dingtalk:token:{self.settings.app_key}"

    async def token(self) -> str:
        cached = await self.coord.cache_get(self._token_key)
        if cached:
            return cached
        async with self.coord.lock(self._token_key, ttl_s=self.settings.timeout_s * 2):
            cached = await self.coord.cache_get(self._token_key)
            if cached:
                return cached
            status, data = await self._send(
                "POST",
                f"{self.settings.api_base}/v1.0/oauth2/accessToken",
                {
                    "appKey": self.settings.app_key,
                    "appSecret": self.settings.app_secret.get_secret_value(),
                },
            )
            if status != 200:
                raise _open_api_error("accessToken", status, data)
            try:
                token = AccessToken.model_validate(data)
            except ValidationError as exc:
                raise RetryableError(f"dingtalk accessToken: unreadable answer {data}") from exc
            ttl = max(60, token.expire_in - TOKEN_MARGIN_S)
            await self.coord.cache_set(self._token_key, token.access_token, ttl)
            return token.access_token

    async def forget_token(self, token: str) -> None:
        """Drop `token` from the shared cache unless someone has already replaced it."""
        if await self.coord.cache_get(self._token_key) == token:
            await self.coord.cache_set(self._token_key, "", 0.001)

    async def call(self, method: str, path: str, body: Outbound) -> dict[str, Any]:
        """One open-API call; an expired token is refreshed and the call retried once."""
        for attempt in range(2):
            token = await self.token()
            status, data = await self._send(
                method, f"{self.settings.api_base}{path}", body.dump(), {TOKEN_HEADER: token}
            )
            if status == 200:
                return data
            if _is_auth_error(status, data) and attempt == 0:
                log.info("dingtalk access token refused on %s; refreshing", path)
                await self.forget_token(token)
                continue
            raise _open_api_error(path, status, data)
        raise AssertionError("unreachable")

    async def open_connection(self) -> Connection:
        """Stream mode: app key + secret → a websocket endpoint and a single-use ticket."""
        body = OpenConnection(
            client_id=self.settings.app_key,
            client_secret=self.settings.app_secret.get_secret_value(),
            subscriptions=[Subscription(topic=ROBOT_TOPIC), Subscription(topic=CARD_TOPIC)],
            ua=UA,
        )
        status, data = await self._send(
            "POST", f"{self.settings.api_base}/v1.0/gateway/connections/open", body.dump()
        )
        if status != 200:
            raise _open_api_error("connections/open", status, data)
        try:
            return Connection.model_validate(data)
        except ValidationError as exc:
            raise RetryableError(f"dingtalk connections/open: unreadable answer {data}") from exc

    async def create_and_deliver(self, request: CreateAndDeliver) -> None:
        try:
            data = await self.call("POST", "/v1.0/card/instances/createAndDeliver", request)
        except PermanentError as exc:
            if CARD_EXISTS in str(exc):
                raise CardExistsError(f"{exc} (outTrackId {request.out_track_id})") from exc
            raise
        answer = CreateAndDeliverAnswer.model_validate(data)
        failed = [r for r in answer.result.deliver_results if not r.success]
        if not answer.success or failed:
            why = "; ".join(f"{r.space_id}: {r.error_msg}" for r in failed) or str(data)
            raise PermanentError(f"dingtalk createAndDeliver {request.out_track_id}: {why}")

    async def update_card(self, request: UpdateCard) -> None:
        data = await self.call("PUT", "/v1.0/card/instances", request)
        if data.get("success") is False:
            raise PermanentError(f"dingtalk card update {request.out_track_id}: {data}")

    async def register_card_callback(self, request: RegisterCallback) -> None:
        await self.call("POST", "/v1.0/card/callbacks/register", request)

    async def send_group(self, open_conversation_id: str, msg_key: str, msg_param: str) -> None:
        body = GroupMessage(
            robot_code=self.robot_code,
            open_conversation_id=open_conversation_id,
            msg_key=msg_key,
            msg_param=msg_param,
        )
        await self.call("POST", "/v1.0/robot/groupMessages/send", body)

    async def send_users(self, user_ids: list[str], msg_key: str, msg_param: str) -> None:
        body = UserMessage(
            robot_code=self.robot_code, user_ids=user_ids, msg_key=msg_key, msg_param=msg_param
        )
        await self.call("POST", "/v1.0/robot/oToMessages/batchSend", body)

    async def send_work_notice(self, user_ids: list[str], text: str) -> None:
        """A work notification (工作通知) from the app to each of `user_ids` (DingTalk userids =
        staff ids), 100 people a call. DingTalk delivers a
        text once a day to a person: the same words again that day reach nobody, so a retry
        of a call whose answer was lost notifies no one twice."""
        agent_id = self.settings.agent_id
        if not agent_id:
            raise PermanentError("dingtalk.agent_id is not set: no work notification can be sent")
        for start in range(0, len(user_ids), WORK_NOTICE_USERS):
            body = WorkNotice(
                agent_id=agent_id,
                userid_list=",".join(user_ids[start : start + WORK_NOTICE_USERS]),
                msg=WorkNoticeMessage(text=Text(content=text)),
            )
            for attempt in range(2):
                token = await self.token()
                url = str(
                    URL(f"{self.settings.oapi_base}{WORK_NOTICE_PATH}").with_query(
                        access_token=token
                    )
                )
                status, data = await self._send("POST", url, body.dump())
                answer = WorkNoticeAnswer.model_validate(data)
                if answer.errcode in OAPI_TOKEN_ERRORS and attempt == 0:
                    log.info("dingtalk access token refused by asyncsend_v2; refreshing")
                    await self.forget_token(token)
                    continue
                _check_robot_answer("work notice", status, data)
                break

    async def reply_by_session(self, url: str, message: RobotSend) -> None:
        if not session_webhook_allowed(url, self.settings.oapi_base):
            raise PermanentError("dingtalk session webhook is not on DingTalk's robot host")
        status, data = await self._send("POST", url, message.dump())
        _check_robot_answer("session webhook", status, data)

    async def _send(
        self, method: str, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await request_json(self.session, method, url, body, self.timeout, headers)


class CustomRobot:
    """A group's custom robot webhook (加签): send-only, 20 messages a minute."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        timeout_s: float,
        mute_s: float = ROBOT_THROTTLE_S,
    ) -> None:
        self.session = session
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.mute_s = mute_s

    async def send(self, webhook_url: str, secret: str, message: RobotSend) -> None:
        url = webhook_url
        if secret:
            ts = int(self.clock.now().timestamp() * 1000)
            url += ("&" if "?" in url else "?") + robot_query(secret, ts)
        status, data = await request_json(self.session, "POST", url, message.dump(), self.timeout)
        _check_robot_answer("custom robot", status, data, mute_s=self.mute_s)


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: dict[str, Any],
    limit: aiohttp.ClientTimeout,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """(status, JSON object) of one request; network trouble is retryable."""
    sent = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    where = url.split("?", 1)[0]
    try:
        async with session.request(
            method, url, data=encode(body), headers=sent, timeout=limit
        ) as resp:
            text = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(f"dingtalk {where}: {type(exc).__name__} {exc}") from exc
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if status >= 500 or status == 429:
            raise RetryableError(f"dingtalk {where}: HTTP {status} {text[:200]}")
        raise PermanentError(f"dingtalk {where}: HTTP {status}, not JSON: {text[:200]}")
    return status, data


def _is_auth_error(status: int, data: dict[str, Any]) -> bool:
    return status == 401 or str(data.get("code", "")) == "InvalidAuthentication"


def _open_api_error(what: str, status: int, data: dict[str, Any]) -> Exception:
    code, message = str(data.get("code", "")), str(data.get("message", ""))
    text = f"dingtalk {what}: HTTP {status} {code} {message}".rstrip()
    if status == 429 or "QpsLimit" in code or code.startswith("Throttling"):
        return ThrottledError(text, defer=2.0)
    if status >= 500:
        return RetryableError(text)
    return PermanentError(text)


def _check_robot_answer(
    what: str, status: int, data: dict[str, Any], *, mute_s: float = ROBOT_THROTTLE_S
) -> None:
    try:
        errcode = int(data.get("errcode", 0 if status == 200 else BUSY))
    except (TypeError, ValueError):
        errcode = BUSY
    if status == 200 and errcode == 0:
        return
    text = f"dingtalk {what}: {errcode} {data.get('errmsg', '')}".rstrip()
    if errcode == SESSION_EXPIRED and what == "session webhook":
        raise SessionExpiredError(text)
    if errcode == ROBOT_THROTTLED:
        raise ThrottledError(text, defer=mute_s)
    if errcode == BUSY or status >= 500 or status == 429:
        raise RetryableError(text)
    raise PermanentError(text)

"""WeCom's HTTP APIs on the shared aiohttp session: the app (gettoken, message/send,
update_template_card), group webhooks and AI-bot response URLs.

Error codes (doc 90313) become our errors: 40014/42001/40001 refetch the token and retry
once; 45009/45033 are throttling (retry after a pause, not a failure); -1 (busy) is retried
here up to three times; 60020, 81013 and 93000 are permanent and say what to fix, which
the dispatcher's dead letter carries to the admin group.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from handlers.errors import PermanentError, RetryableError, ThrottledError
from storage.coordination import Coordination

log = logging.getLogger(__name__)

TOKEN_INVALID = frozenset({40001, 40014, 42001})
FREQUENCY_LIMIT = 45009
THROTTLED = {FREQUENCY_LIMIT: 60.0, 45033: 2.0}
BUSY = -1
BUSY_RETRIES = 3
TOKEN_MARGIN_S = 300
EXPLAIN = {
    60020: (
        "这台服务器的出口 IP 不在应用的「企业可信IP」里（60020）：到 企业微信管理后台 → 应用管理 → "
        "应用 → 企业可信IP 加上它"
    ),
    81013: (
        "没有有效的接收人（81013）：userid 不存在、已离职或不在应用的可见范围；检查 [[groups]] "
        "chat_id、[[staff]] wecom_userid 和应用的可见范围"
    ),
    93000: "群机器人的 webhook key 无效或机器人已被移出群（93000）：重新添加机器人并更新 webhook_url",
}


def check(data: dict[str, Any], what: str, *, throttle_s: float | None = None) -> None:
    """Raise the error an `errcode` stands for; return when it is 0.

    `throttle_s` replaces the pause after 45009 (`wecom.throttle_wait_s`)."""
    code = int(data.get("errcode", 0) or 0)
    if code == 0:
        return
    message = f"{what}: errcode {code} {str(data.get('errmsg', ''))[:200]}"
    if code in THROTTLED:
        wait = throttle_s if code == FREQUENCY_LIMIT and throttle_s is not None else THROTTLED[code]
        raise ThrottledError(message, defer=wait)
    if code == BUSY:
        raise RetryableError(message)
    if code in EXPLAIN:
        log.error("%s — %s", message, EXPLAIN[code])
        raise PermanentError(f"{EXPLAIN[code]} [{message}]")
    raise PermanentError(message)


async def post_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    what: str,
    *,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One call; transport trouble is retryable, an unreadable answer too."""
    try:
        async with session.request(
            method,
            url,
            params=params,
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            text = await resp.text()
            if resp.status >= 500 or resp.status == 429:
                raise RetryableError(f"{what}: HTTP {resp.status}")
            if resp.status >= 400:
                raise PermanentError(f"{what}: HTTP {resp.status} {text[:200]}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryableError(f"{what}: {type(exc).__name__} {exc}") from exc
    except ValueError as exc:
        raise RetryableError(f"{what}: unreadable answer") from exc
    if not isinstance(data, dict):
        raise RetryableError(f"{what}: unreadable answer")
    return data


@dataclass(frozen=True)
class Sent:
    msgid: str
    response_code: str


class WeComClient:
    """The self-built app's API; the access token is cached per app in the shared cache."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        coord: Coordination,
        *,
        api_base: str,
        corp_id: str,
        agent_id: int,
        secret: str,
        timeout_s: float = 10.0,
        busy_delay_s: float = 0.2,
        throttle_s: float = THROTTLED[FREQUENCY_LIMIT],
    ) -> None:
        self.session = session
        self.coord = coord
        self.api_base = api_base.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.secret = secret
        self.timeout_s = timeout_s
        self.busy_delay_s = busy_delay_s
        self.throttle_s = throttle_s
        self.cache_key = f"wecom:token:{corp_id}:{agent_id}"

    async def token(self, *, stale: str = "") -> str:
        """A valid access token; `stale` is one WeCom just refused, so never hand it out again."""
        cached = await self.coord.cache_get(self.cache_key)
        if cached and cached != stale:
            return cached
        async with self.coord.lock(self.cache_key, ttl_s=15):
            cached = await self.coord.cache_get(self.cache_key)
            if cached and cached != stale:
                return cached
            data = await post_json(
                self.session,
                "GET",
                f"{self.api_base}/cgi-bin/gettoken",
                "gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret},
                timeout_s=self.timeout_s,
            )
            if int(data.get("errcode", 0) or 0) in (40001, 40013):
                message = f"gettoken: errcode {data.get('errcode')} {data.get('errmsg', '')}"
                log.error("%s — check wecom.corp_id and wecom.secret", message)
                raise PermanentError(
                    f"企业微信拒绝了 corp_id / secret，请检查 wecom.corp_id 和 wecom.secret [{message}]"
                )
            check(data, "gettoken")
            token = str(data["access_token"])
            ttl = max(60, int(data.get("expires_in", 7200)) - TOKEN_MARGIN_S)
            await self.coord.cache_set(self.cache_key, token, ttl)
            log.info("fetched a WeCom access token for agent %s", self.agent_id)
            return token

    async def call(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        token = await self.token()
        refreshed, busy = False, 0
        while True:
            data = await post_json(
                self.session,
                "POST",
                f"{self.api_base}{path}",
                what,
                params={"access_token": token},
                body=body,
                timeout_s=self.timeout_s,
            )
            code = int(data.get("errcode", 0) or 0)
            if code in TOKEN_INVALID and not refreshed:
                token, refreshed = await self.token(stale=token), True
                continue
            if code == BUSY and busy < BUSY_RETRIES:
                await asyncio.sleep(self.busy_delay_s * 2**busy)
                busy += 1
                continue
            if code in TOKEN_INVALID:
                raise RetryableError(f"{what}: a fresh access token was refused too ({code})")
            check(data, what, throttle_s=self.throttle_s)
            return data

    async def send_card(self, touser: str, card: dict[str, Any]) -> Sent:
        data = await self.call(
            "/cgi-bin/message/send",
            {
                "touser": touser,
                "msgtype": "template_card",
                "agentid": self.agent_id,
                "template_card": card,
            },
            "message/send",
        )
        return Sent(str(data.get("msgid", "")), str(data.get("response_code", "")))

    async def send_text(self, touser: str, content: str) -> None:
        await self.call(
            "/cgi-bin/message/send",
            {
                "touser": touser,
                "msgtype": "text",
                "agentid": self.agent_id,
                "text": {"content": content},
            },
            "message/send",
        )

    async def update_card(self, response_code: str, card: dict[str, Any]) -> None:
        """Replace the card for everyone it went to (`atall`), spending `response_code`."""
        await self.call(
            "/cgi-bin/message/update_template_card",
            {
                "agentid": self.agent_id,
                "response_code": response_code,
                "atall": 1,
                "template_card": card,
            },
            "update_template_card",
        )


class WebhookClient:
    """Group robots (消息推送) and AI-bot response URLs: a URL that carries its own key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 10.0,
        throttle_s: float = THROTTLED[FREQUENCY_LIMIT],
    ) -> None:
        self.session = session
        self.timeout_s = timeout_s
        self.throttle_s = throttle_s

    async def send_markdown(self, url: str, content: str, what: str = "webhook/send") -> None:
        body = {"msgtype": "markdown", "markdown": {"content": content}}
        data = await post_json(self.session, "POST", url, what, body=body, timeout_s=self.timeout_s)
        check(data, what, throttle_s=self.throttle_s)

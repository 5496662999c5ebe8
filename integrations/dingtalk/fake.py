"""FakeDingtalk: DingTalk's side of every surface refundops uses, for tests.

One aiohttp app (run it on port 0 and set `base_url`) serving the stream gateway
(`connections/open` + the websocket, pings, `disconnect`), the open API (token, card
create/update, callback registration, robot group and 1:1 messages), session webhooks
(which expire: 300001), custom robots (加签 check, 20/min then muted 10 min: 130101,
20,000-byte limit) and work notifications (`asyncsend_v2`: the app's agent id, at most 100
userids, the same text to a person once a day). It records what it received; knobs inject failures. For HTTP mode it
signs what DingTalk would POST: robot messages (`timestamp`/`sign`) and card callbacks
(`x-ddpaas-signature-*` with the registered apiSecret).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from aiohttp import WSMsgType, web

from integrations import fake_waiting
from integrations.dingtalk.models import CARD_TOPIC, ROBOT_TOPIC
from integrations.dingtalk.signing import (
    CARD_SIGN_HEADER,
    CARD_TIMESTAMP_HEADER,
    SIGN_HEADER,
    TIMESTAMP_HEADER,
    card_sign,
    sign,
)

TICKET_TTL_S = 90
ROBOT_MUTE_S = 600
ROBOT_MAX_BYTES = 20_000
MSG_PARAM_MAX_BYTES = 15_000
GROUP_SPACE = "dtv1.card//IM_GROUP."
MSG_KEYS = frozenset({"sampleText", "sampleMarkdown", "sampleActionCard", "sampleLink"})
ROBOT_TYPES = frozenset({"text", "markdown", "link", "actionCard", "feedCard"})
WORK_NOTICE_KEYS = frozenset({"agent_id", "userid_list", "dept_id_list", "to_all_user", "msg"})
WORK_NOTICE_TYPES = frozenset({"text", "markdown", "link", "action_card", "oa", "image", "file"})
WORK_NOTICE_USERS = 100
DAY_S = 86400
CHINA_UTC_OFFSET_S = 8 * 3600


@dataclass
class FakeCard:
    out_track_id: str
    template_id: str
    space_id: str
    callback_type: str
    route_key: str
    params: dict[str, str]
    at_user_ids: dict[str, str]
    updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@dataclass
class FakeConnection:
    ws: web.WebSocketResponse
    topics: set[str]
    acks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class FakeSession:
    conversation_id: str
    conversation_type: str
    expires_ms: int


@dataclass
class FakeDingtalk:
    app_key: str = "dingappkey"
    app_secret: str = "ding-app-secret"
    robot_code: str = "dingrobot"
    corp_id: str = "dingcorp"
    agent_id: int = 3100001
    now: Callable[[], float] = time.time
    base_url: str = ""
    token_ttl_s: int = 7200
    robot_per_minute: int = 20
    # failure knobs
    fail_next: dict[str, int] = field(default_factory=dict)
    throttle_next_robot: int = 0
    unreachable_groups: set[str] = field(default_factory=set)
    # what happened
    requests: list[tuple[str, str]] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    opens: list[dict[str, Any]] = field(default_factory=list)
    connections: list[FakeConnection] = field(default_factory=list)
    connects: int = 0
    cards: dict[str, FakeCard] = field(default_factory=dict)
    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_messages: list[dict[str, Any]] = field(default_factory=list)
    user_messages: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    session_replies: list[dict[str, Any]] = field(default_factory=list)
    robots: dict[str, str] = field(default_factory=dict)
    robot_messages: list[dict[str, Any]] = field(default_factory=list)
    robot_errors: list[int] = field(default_factory=list)
    # Work notifications delivered ({"user", "text", "msg", "task_id"}), and those DingTalk
    # accepted but did not deliver: the same text to the same person again that day.
    work_notices: list[dict[str, Any]] = field(default_factory=list)
    work_notices_dropped: list[dict[str, Any]] = field(default_factory=list)
    work_notice_errors: list[int] = field(default_factory=list)
    work_notice_tasks: int = 0
    _tickets: dict[str, tuple[float, set[str]]] = field(default_factory=dict)
    _robot_sent: dict[str, list[float]] = field(default_factory=dict)
    _robot_muted: dict[str, float] = field(default_factory=dict)
    _card_frames: dict[str, str] = field(default_factory=dict)
    _notices_seen: set[tuple[str, int, str]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1.0/gateway/connections/open", self.open_connection)
        app.router.add_get("/gateway/connect", self.connect)
        app.router.add_post("/v1.0/oauth2/accessToken", self.access_token)
        app.router.add_post("/v1.0/card/instances/createAndDeliver", self.create_and_deliver)
        app.router.add_put("/v1.0/card/instances", self.update_card)
        app.router.add_post("/v1.0/card/callbacks/register", self.register_callback)
        app.router.add_post("/v1.0/robot/groupMessages/send", self.group_send)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self.users_send)
        app.router.add_post("/robot/sendBySession", self.session_send)
        app.router.add_post("/robot/send", self.robot_send)
        app.router.add_post("/topapi/message/corpconversation/asyncsend_v2", self.work_notice_send)
        return app

    # -- helpers for tests -----------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def session(
        self, conversation_id: str, *, conversation_type: str = "2", ttl_s: float = 5400
    ) -> tuple[str, int]:
        """A new session webhook (URL, expiry in ms) as DingTalk hands out with a message."""
        key = uuid.uuid4().hex
        expires = self.now_ms() + int(ttl_s * 1000)
        self.sessions[key] = FakeSession(conversation_id, conversation_type, expires)
        return self.url(f"/robot/sendBySession?session={key}"), expires

    def robot_message(
        self,
        text: str,
        *,
        sender_staff_id: str,
        conversation_id: str = "cidGROUP==",
        conversation_type: str = "2",
        msg_id: str | None = None,
        nick: str = "",
        session_ttl_s: float = 5400,
    ) -> dict[str, Any]:
        """What DingTalk sends when someone @-mentions the robot: ` <text>` and a session."""
        webhook, expires = self.session(
            conversation_id, conversation_type=conversation_type, ttl_s=session_ttl_s
        )
        return {
            "msgtype": "text",
            "text": {"content": " " + text},
            "msgId": msg_id or f"msg{uuid.uuid4().hex}",
            "createAt": self.now_ms(),
            "conversationType": conversation_type,
            "conversationId": conversation_id,
            "conversationTitle": "售后一组",
            "senderId": f"$:LWCP_v1:${sender_staff_id}",
            "senderNick": nick or sender_staff_id,
            "senderStaffId": sender_staff_id,
            "senderCorpId": self.corp_id,
            "chatbotCorpId": self.corp_id,
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.robot_code,
            "isInAtList": True,
            "sessionWebhook": webhook,
            "sessionWebhookExpiredTime": expires,
        }

    def click_payload(self, out_track_id: str, user_id: str, action: str) -> dict[str, Any]:
        """A tap on a card button, with the params the shipped template sends: variables are
        filled from the card's data as DingTalk holds it at the time of the tap."""
        card = self.cards[out_track_id]
        params = {
            "action": action,
            "case": card.params["handle"],
            "version": card.params.get("version", ""),
        }
        private = {"actionIds": [action], "params": params}
        return {
            "type": "actionCallback",
            "outTrackId": out_track_id,
            "corpId": self.corp_id,
            "userId": user_id,
            "spaceType": "IM_GROUP",
            "spaceId": card.space_id.removeprefix(GROUP_SPACE),
            "content": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
        }

    def robot_headers(self, *, at_ms: int | None = None) -> dict[str, str]:
        """The headers of an HTTP-mode robot message: `timestamp` (ms) and its `sign`
        (receive-message doc: base64 HMAC-SHA256 of "<timestamp>\\n<appSecret>")."""
        ts = self.now_ms() if at_ms is None else at_ms
        return {
            TIMESTAMP_HEADER: str(ts),
            SIGN_HEADER: sign(self.app_secret, ts),
            "Content-Type": "application/json; charset=utf-8",
        }

    def card_headers(self, out_track_id: str, *, at_ms: int | None = None) -> dict[str, str]:
        """The headers of an HTTP-mode card callback (event-callback-card doc, 回调签名验证):
        base64 HMAC-SHA256(apiSecret, "<timestamp>") with the apiSecret registered for the
        card's callbackRouteKey; none when no apiSecret was registered."""
        card = self.cards[out_track_id]
        secret = str(self.registrations.get(card.route_key, {}).get("apiSecret") or "")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if secret:
            ts = self.now_ms() if at_ms is None else at_ms
            headers |= {CARD_TIMESTAMP_HEADER: str(ts), CARD_SIGN_HEADER: card_sign(secret, ts)}
        return headers

    def apply_callback_answer(self, out_track_id: str, answer: dict[str, Any] | None) -> None:
        """Do what DingTalk does with a card callback's answer: update the card for everyone."""
        params = ((answer or {}).get("cardData") or {}).get("cardParamMap")
        if not params:
            return
        card = self.cards[out_track_id]
        by_key = (answer or {}).get("cardUpdateOptions", {}).get("updateCardDataByKey", False)
        card.params = {**card.params, **params} if by_key else dict(params)
        card.updates.append(("callback", dict(params)))

    def add_robot(self, secret: str) -> str:
        """A custom robot with 加签: its webhook URL (the secret goes to the channel config)."""
        token = uuid.uuid4().hex
        self.robots[token] = secret
        return self.url(f"/robot/send?access_token={token}")

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def live(self, topic: str | None = None) -> list[FakeConnection]:
        return [
            c for c in self.connections if not c.ws.closed and (topic is None or topic in c.topics)
        ]

    async def push(self, topic: str, data: dict[str, Any], *, message_id: str | None = None) -> str:
        """Send a CALLBACK frame to one connection that subscribed `topic` (else it is lost)."""
        message_id = message_id or uuid.uuid4().hex
        if topic == CARD_TOPIC:
            self._card_frames[message_id] = str(data.get("outTrackId", ""))
        targets = self.live(topic)
        if targets:
            await targets[-1].ws.send_str(
                json.dumps(self.frame("CALLBACK", topic, data, message_id))
            )
        return message_id

    async def wait_for(self, check: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until `check()` is truthy (re-checked after every request and every ack) and
        return it; unlike `until`, it wakes the moment the thing happens (for timing)."""
        return await fake_waiting.wait_for(self._changed, check, within)

    async def acked(self, message_id: str, within: float = 5.0) -> dict[str, Any]:
        """The first ack of a frame, waiting for it."""
        await until(lambda: bool(self.acks_of(message_id)), within)
        return self.acks_of(message_id)[0]

    def acks_of(self, message_id: str) -> list[dict[str, Any]]:
        return [a for c in self.connections for a in c.acks.get(message_id, [])]

    async def say(self, text: str, **kwargs: Any) -> dict[str, Any]:
        """Someone @-mentions the robot over the stream; the ack, once it arrives."""
        return await self.acked(await self.push(ROBOT_TOPIC, self.robot_message(text, **kwargs)))

    async def click(self, out_track_id: str, user_id: str, action: str) -> dict[str, Any]:
        """Someone taps a button over the stream; the callback's answer (already applied)."""
        mid = await self.push(CARD_TOPIC, self.click_payload(out_track_id, user_id, action))
        ack = await self.acked(mid)
        response: dict[str, Any] = json.loads(ack["data"]).get("response") or {}
        return response

    async def ping(self) -> tuple[str, dict[str, Any]]:
        opaque = uuid.uuid4().hex
        mid = uuid.uuid4().hex
        (conn,) = self.live()[-1:]
        await conn.ws.send_str(json.dumps(self.frame("SYSTEM", "ping", {"opaque": opaque}, mid)))
        return opaque, await self.acked(mid)

    async def disconnect(self) -> str:
        """The gateway's polite goodbye; the client must ack and connect again."""
        mid = uuid.uuid4().hex
        for conn in self.live():
            await conn.ws.send_str(json.dumps(self.frame("SYSTEM", "disconnect", {}, mid)))
        return mid

    async def drop(self) -> None:
        """Close every stream connection without a word (a network failure)."""
        for conn in self.live():
            await conn.ws.close()

    def frame(self, kind: str, topic: str, data: dict[str, Any], message_id: str) -> dict[str, Any]:
        return {
            "specVersion": "1.0",
            "type": kind,
            "headers": {
                "appId": self.app_key,
                "connectionId": uuid.uuid4().hex[:12],
                "contentType": "application/json",
                "messageId": message_id,
                "time": str(self.now_ms()),
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }

    # -- the stream gateway ----------------------------------------------------------------

    async def open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opens.append(body)
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return _api_error(401, "authFailed", "鉴权失败")
        topics = {s["topic"] for s in body.get("subscriptions", []) if s.get("type") == "CALLBACK"}
        ticket = f"{uuid.uuid4()}+/="
        self._tickets[ticket] = (self.now() + TICKET_TTL_S, topics)
        endpoint = self.url("/gateway/connect").replace("http", "ws", 1)
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        expires, topics = self._tickets.pop(ticket, (0.0, set()))
        if expires < self.now():
            return _api_error(401, "invalidTicket", "ticket 无效或已使用")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = FakeConnection(ws, topics)
        self.connections.append(conn)
        self.connects += 1
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            ack = json.loads(msg.data)
            message_id = ack.get("headers", {}).get("messageId", "")
            conn.acks.setdefault(message_id, []).append(ack)
            track = self._card_frames.pop(message_id, "")
            if track in self.cards and ack.get("code") == 200:
                self.apply_callback_answer(
                    track, json.loads(ack.get("data") or "{}").get("response")
                )
            self._changed.set()
        return ws

    # -- the open API ----------------------------------------------------------------------

    async def access_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = uuid.uuid4().hex
        self.tokens[token] = self.now() + self.token_ttl_s
        self.tokens_issued += 1
        return web.json_response({"accessToken": token, "expireIn": self.token_ttl_s})

    async def create_and_deliver(self, request: web.Request) -> web.Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        track = str(body.get("outTrackId", ""))
        params = (body.get("cardData") or {}).get("cardParamMap")
        space = str(body.get("openSpaceId", ""))
        deliver = body.get("imGroupOpenDeliverModel") or {}
        if not body.get("cardTemplateId") or not track:
            return _api_error(400, "param.invalid", "cardTemplateId and outTrackId are required")
        if not _all_strings(params):
            return _api_error(400, "param.invalid", "cardParamMap values must be strings")
        if not space.startswith(GROUP_SPACE) or space == GROUP_SPACE:
            return _api_error(400, "param.invalid", f"openSpaceId {space!r} is not an IM group")
        if body.get("callbackType") not in ("STREAM", "HTTP"):
            return _api_error(400, "param.invalid", "callbackType must be STREAM or HTTP")
        route_key = str(body.get("callbackRouteKey", ""))
        if body["callbackType"] == "HTTP" and route_key not in self.registrations:
            return _api_error(
                400, "param.invalid", f"callbackRouteKey {route_key!r} is not registered"
            )
        if deliver.get("robotCode") != self.robot_code:
            return _api_error(400, "param.invalid", "imGroupOpenDeliverModel.robotCode is wrong")
        if track in self.cards:
            # createAndDeliver's error table: 400 param.cardAlreadyExist 卡片已经存在.
            return _api_error(400, "param.cardAlreadyExist", "卡片已经存在")
        conversation = space.removeprefix(GROUP_SPACE)
        if conversation in self.unreachable_groups:
            result = {"spaceType": "IM_GROUP", "spaceId": conversation, "success": False}
            result["errorMsg"] = "机器人不在该群中"
            return web.json_response(
                {"success": True, "result": {"outTrackId": track, "deliverResults": [result]}}
            )
        self.cards[track] = FakeCard(
            out_track_id=track,
            template_id=str(body["cardTemplateId"]),
            space_id=space,
            callback_type=str(body["callbackType"]),
            route_key=route_key,
            params=dict(params),
            at_user_ids=dict(deliver.get("atUserIds") or {}),
        )
        delivered = {
            "spaceType": "IM_GROUP",
            "spaceId": conversation,
            "success": True,
            "carrierId": uuid.uuid4().hex,
        }
        return web.json_response(
            {"success": True, "result": {"outTrackId": track, "deliverResults": [delivered]}}
        )

    async def update_card(self, request: web.Request) -> web.Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        card = self.cards.get(str(body.get("outTrackId", "")))
        if card is None:
            return _api_error(400, "param.cardNotExist", "card instance does not exist")
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not _all_strings(params):
            return _api_error(400, "param.invalid", "cardParamMap values must be strings")
        by_key = (body.get("cardUpdateOptions") or {}).get("updateCardDataByKey", False)
        card.params = {**card.params, **params} if by_key else dict(params)
        card.updates.append(("api", dict(params)))
        return web.json_response({"success": True, "result": True})

    async def register_callback(self, request: web.Request) -> web.Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        if not body.get("callbackRouteKey") or not body.get("callbackUrl"):
            return _api_error(400, "param.invalid", "callbackRouteKey and callbackUrl are required")
        self.registrations[str(body["callbackRouteKey"])] = body
        return web.json_response({"success": True, "result": {"callbackUrl": body["callbackUrl"]}})

    async def group_send(self, request: web.Request) -> web.Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        problem = self._robot_message_problem(body)
        if problem or not body.get("openConversationId"):
            return _api_error(400, "param.invalid", problem or "openConversationId is required")
        self.group_messages.append(
            {
                "conversation": body["openConversationId"],
                "key": body["msgKey"],
                "param": json.loads(body["msgParam"]),
            }
        )
        return web.json_response({"processQueryKey": uuid.uuid4().hex})

    async def users_send(self, request: web.Request) -> web.Response:
        body, refused = await self._authorized(request)
        if refused is not None:
            return refused
        problem = self._robot_message_problem(body)
        if problem or not body.get("userIds"):
            return _api_error(400, "param.invalid", problem or "userIds is required")
        self.user_messages.append(
            {"users": body["userIds"], "key": body["msgKey"], "param": json.loads(body["msgParam"])}
        )
        return web.json_response(
            {
                "processQueryKey": uuid.uuid4().hex,
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": [],
            }
        )

    def _robot_message_problem(self, body: dict[str, Any]) -> str:
        if body.get("robotCode") != self.robot_code:
            return "robotCode is wrong"
        if body.get("msgKey") not in MSG_KEYS:
            return f"unknown msgKey {body.get('msgKey')!r}"
        param = body.get("msgParam")
        if not isinstance(param, str) or len(param.encode()) > MSG_PARAM_MAX_BYTES:
            return "msgParam must be a JSON string of at most 15000 bytes"
        try:
            json.loads(param)
        except ValueError:
            return "msgParam is not JSON"
        return ""

    async def _authorized(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        if self.tokens.get(token, 0.0) <= self.now():
            return {}, _api_error(400, "InvalidAuthentication", "不合法的access_token")
        try:
            body = await request.json()
        except ValueError:
            return {}, _api_error(400, "param.invalid", "body is not JSON")
        if not isinstance(body, dict):
            return {}, _api_error(400, "param.invalid", "body is not a JSON object")
        return body, None

    # -- robots: session webhooks and custom robots ---------------------------------------

    async def session_send(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.query.get("session", ""))
        if session is None or session.expires_ms <= self.now_ms():
            return _robot_error(300001, "session 不存在")
        body = await request.json()
        problem = _robot_body_problem(body, await request.read())
        if problem:
            return problem
        self.session_replies.append({"conversation": session.conversation_id, **body})
        return _robot_error(0, "ok")

    async def robot_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        secret = self.robots.get(token)
        if secret is None:
            return self._robot_refusal(300001, "token is not exist")
        if secret:
            try:
                ts = int(request.query.get("timestamp", ""))
            except ValueError:
                return self._robot_refusal(310000, "invalid timestamp")
            if abs(self.now_ms() - ts) > 3600 * 1000:
                return self._robot_refusal(310000, "invalid timestamp")
            given = request.query.get("sign", "").encode()
            if not hmac.compare_digest(sign(secret, ts).encode(), given):
                return self._robot_refusal(310000, "sign not match")
        now = self.now()
        if self.throttle_next_robot > 0:
            self.throttle_next_robot -= 1
            self._robot_muted[token] = now + ROBOT_MUTE_S
        sent = [t for t in self._robot_sent.get(token, []) if t > now - 60]
        if len(sent) >= self.robot_per_minute:
            self._robot_muted[token] = now + ROBOT_MUTE_S
        if self._robot_muted.get(token, 0.0) > now:
            return self._robot_refusal(130101, "send too fast, exceed 20 times per minute")
        raw = await request.read()
        if len(raw) > ROBOT_MAX_BYTES:
            return self._robot_refusal(460101, "message too long, exceed 20000 bytes")
        problem = _robot_body_problem(json.loads(raw), raw)
        if problem:
            return problem
        self._robot_sent[token] = [*sent, now]
        self.robot_messages.append({"token": token, "sent_at": now, **json.loads(raw)})
        return _robot_error(0, "ok")

    # -- work notifications (oapi) ---------------------------------------------------------

    async def work_notice_send(self, request: web.Request) -> web.Response:
        """`POST /topapi/message/corpconversation/asyncsend_v2?access_token=`: answers
        `{"errcode","errmsg","task_id","request_id"}`; the sending itself is asynchronous."""
        if self.tokens.get(request.query.get("access_token", ""), 0.0) <= self.now():
            return self._notice_refusal(40014, "不合法的access_token")
        try:
            body = await request.json()
        except ValueError:
            return self._notice_refusal(40035, "不合法的参数：body is not JSON")
        if not isinstance(body, dict):
            return self._notice_refusal(40035, "不合法的参数：body is not a JSON object")
        if unknown := set(body) - WORK_NOTICE_KEYS:
            return self._notice_refusal(40035, f"不合法的参数 {sorted(unknown)}")
        agent = body.get("agent_id")
        if isinstance(agent, bool) or not isinstance(agent, int):
            return self._notice_refusal(40035, "缺少参数 agent_id (a number)")
        if agent != self.agent_id:
            return self._notice_refusal(40056, "不合法的agentid")
        users = body.get("userid_list")
        if not isinstance(users, str) or not users:
            return self._notice_refusal(40035, "缺少参数 userid_list (comma-separated userids)")
        ids = users.split(",")
        if any(not u or u != u.strip() for u in ids) or len(ids) > WORK_NOTICE_USERS:
            return self._notice_refusal(40035, "不合法的参数 userid_list")
        problem = _notice_msg_problem(body.get("msg"))
        if problem:
            return self._notice_refusal(40035, problem)
        msg: dict[str, Any] = body["msg"]
        text = json.dumps(msg, ensure_ascii=False, sort_keys=True)
        day = int(self.now() + CHINA_UTC_OFFSET_S) // DAY_S
        self.work_notice_tasks += 1
        task_id = self.work_notice_tasks
        content = str((msg.get("text") or {}).get("content", ""))
        for user in ids:
            record = {"user": user, "text": content, "msg": msg, "task_id": task_id}
            seen = (user, day, text) in self._notices_seen
            self._notices_seen.add((user, day, text))
            (self.work_notices_dropped if seen else self.work_notices).append(record)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": uuid.uuid4().hex}
        )

    def notices_to(self, user: str) -> list[str]:
        """The texts of the work notifications delivered to `user`, oldest first."""
        return [n["text"] for n in self.work_notices if n["user"] == user]

    def _notice_refusal(self, errcode: int, errmsg: str) -> web.Response:
        self.work_notice_errors.append(errcode)
        return _robot_error(errcode, errmsg)

    def _robot_refusal(self, errcode: int, errmsg: str) -> web.Response:
        self.robot_errors.append(errcode)
        return _robot_error(errcode, errmsg)

    # -- the plumbing ----------------------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        left = self.fail_next.get(request.path, 0)
        if left > 0:
            self.fail_next[request.path] = left - 1
            return _api_error(503, "ServiceUnavailable", "injected failure")
        try:
            return await handler(request)
        finally:
            self._changed.set()

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))


def _api_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"requestid": uuid.uuid4().hex.upper(), "code": code, "message": message}, status=status
    )


def _robot_error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


def _robot_body_problem(body: Any, raw: bytes) -> web.Response | None:
    if len(raw) > ROBOT_MAX_BYTES:
        return _robot_error(460101, "message too long, exceed 20000 bytes")
    kind = body.get("msgtype") if isinstance(body, dict) else None
    if kind not in ROBOT_TYPES or not isinstance(body.get(kind), dict):
        return _robot_error(40035, "缺少参数 msgtype 或消息内容")
    return None


def _notice_msg_problem(msg: Any) -> str:
    """Why `msg` is not a work notification body DingTalk takes ("" when it is)."""
    if not isinstance(msg, dict):
        return "缺少参数 msg (an object)"
    kind = msg.get("msgtype")
    if kind not in WORK_NOTICE_TYPES or not isinstance(msg.get(kind), dict):
        return f"不合法的参数 msg.msgtype {kind!r} or its body"
    if set(msg) != {"msgtype", kind}:
        return f"不合法的参数 msg: {sorted(set(msg) - {'msgtype', kind})}"
    if kind == "text":
        content = msg["text"].get("content")
        if not isinstance(content, str) or not content.strip() or set(msg["text"]) != {"content"}:
            return "不合法的参数 msg.text: {content} with some text"
    if kind == "markdown":
        markdown = msg["markdown"]
        if not all(isinstance(markdown.get(k), str) and markdown[k] for k in ("title", "text")):
            return "不合法的参数 msg.markdown: {title, text}"
    return ""


def _all_strings(params: Any) -> TypeGuard[dict[str, str]]:
    return (
        isinstance(params, dict)
        and bool(params)
        and all(isinstance(v, str) for v in params.values())
    )


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds (polling); TimeoutError after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)

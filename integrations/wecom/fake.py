"""Protocol fakes for tests: `FakeWeComAPI` (gettoken, message/send, update_template_card,
webhook/send, AI-bot response URLs), `FakeWeComAIBot` (the AI bot's websocket, frames and
acks as the official SDK speaks them; one connection per bot, a newer one kicks the older) and `WeComCallbacks` (encrypted callbacks as WeCom
sends them). Each records what it received; knobs inject WeCom's failures.

Where WeCom documents no error code for a refusal, the fakes answer 40058 (invalid
parameter) for the API and 846605 (invalid req_id) for the websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from integrations import fake_waiting
from integrations.wecom.crypto import CallbackCrypto, cdata, parse_xml

TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
CODE_TTL_S = 72 * 3600
RESPONSE_URL_TTL_S = 3600
INVALID = 40058
INVALID_REQ_ID = 846605
UPDATE_WINDOW_S = 5.0


def card_problem(card: Any) -> str:
    """What is wrong with a button_interaction / notice `template_card`, or ""."""
    if not isinstance(card, dict):
        return "template_card is not an object"
    kind = card.get("card_type")
    if kind not in ("button_interaction", "text_notice", "news_notice"):
        return f"card_type {kind!r} not supported here"
    if not str(card.get("main_title", {}).get("title", "")):
        return "main_title.title is required"
    if len(card.get("horizontal_content_list", [])) > 6:
        return "horizontal_content_list has more than 6 items"
    if kind == "button_interaction":
        task_id = str(card.get("task_id", ""))
        if not TASK_ID.match(task_id):
            return f"invalid task_id {task_id!r}"
        buttons = card.get("button_list", [])
        if not 1 <= len(buttons) <= 6:
            return "button_list needs 1 to 6 buttons"
        keys = [str(b.get("key", "")) for b in buttons]
        if any(not k or len(k.encode()) > 1024 for k in keys) or len(set(keys)) != len(keys):
            return "button keys must be unique, 1..1024 bytes"
    return ""


def _error(code: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": message, **extra})


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: Any
    errcode: int


@dataclass
class Code:
    task_id: str
    issued_at: float
    used: bool = False


@dataclass
class FakeWeComAPI:
    corp_id: str = "wwfakecorp"
    secret: str = "app-secret"
    agent_id: int = 1000002
    users: set[str] = field(default_factory=set)
    webhook_keys: set[str] = field(default_factory=lambda: {"robot-key"})
    expires_in: int = 7200
    send_limit_per_min: int = 30
    webhook_limit_per_min: int = 20
    now: Callable[[], float] = time.time
    fail_next: list[int] = field(default_factory=list)
    untrusted_ip: bool = False
    base_url: str = ""
    calls: list[Call] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    tokens_issued: int = 0
    codes: dict[str, Code] = field(default_factory=dict)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipients: dict[str, list[str]] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)
    webhook_messages: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    response_urls: dict[str, tuple[float, bool]] = field(default_factory=dict)
    response_posts: list[dict[str, Any]] = field(default_factory=list)
    _sends: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.message_send)
        app.router.add_post("/cgi-bin/message/update_template_card", self.update_template_card)
        app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        app.router.add_post("/cgi-bin/aibot/response", self.aibot_response)
        return app

    # -- knobs and views ------------------------------------------------------------------

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = self.now() - 1

    def webhook_url(self, key: str = "robot-key") -> str:
        return f"{self.base_url}/cgi-bin/webhook/send?key={key}"

    def click_code(self, task_id: str) -> str:
        """The fresh response code a click on `task_id`'s card carries in its callback."""
        code = secrets.token_hex(16)
        self.codes[code] = Code(task_id, self.now())
        return code

    def response_url(self) -> str:
        """A single-use AI-bot response URL, valid for an hour."""
        code = secrets.token_hex(12)
        self.response_urls[code] = (self.now(), False)
        return f"{self.base_url}/cgi-bin/aibot/response?response_code={code}"

    async def wait_for(self, check: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until `check()` is truthy (re-checked after every call) and return it."""
        return await fake_waiting.wait_for(self._changed, check, within)

    def app_calls(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def max_per_minute(self, key: str) -> int:
        """The most webhook sends accepted in any 60 s window for `key`."""
        stamps = sorted(m["at"] for m in self.webhook_messages[key])
        best = 0
        for i, start in enumerate(stamps):
            best = max(best, sum(1 for t in stamps[i:] if t < start + 60))
        return best

    # -- endpoints ------------------------------------------------------------------------

    async def gettoken(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        if query.get("corpid") != self.corp_id:
            return self._record(request, None, _error(40013, "invalid corpid"))
        if query.get("corpsecret") != self.secret:
            return self._record(request, None, _error(40001, "invalid credential"))
        token = secrets.token_hex(16)
        self.tokens[token] = self.now() + self.expires_in
        self.tokens_issued += 1
        answer = {
            "errcode": 0,
            "errmsg": "ok",
            "access_token": token,
            "expires_in": self.expires_in,
        }
        return self._record(request, None, web.json_response(answer))

    async def message_send(self, request: web.Request) -> web.Response:
        body, refused = await self._app_call(request)
        if refused is not None:
            return self._record(request, body, refused)
        if body.get("agentid") != self.agent_id:
            return self._record(request, body, _error(40056, "invalid agentid"))
        wanted = [u for u in str(body.get("touser", "")).split("|") if u]
        valid = [u for u in wanted if not self.users or u in self.users]
        invalid = "|".join(u for u in wanted if u not in valid)
        if not valid:
            return self._record(
                request, body, _error(81013, "user & party & tag all invalid", invaliduser=invalid)
            )
        now = self.now()
        for user in valid:
            window = self._sends[user]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.send_limit_per_min:
                return self._record(request, body, _error(45009, "reach max api minute call limit"))
        for user in valid:
            self._sends[user].append(now)
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": invalid,
            "msgid": secrets.token_hex(8),
        }
        if body.get("msgtype") == "text":
            content = str(body.get("text", {}).get("content", ""))
            if not content or len(content.encode()) > 2048:
                return self._record(
                    request, body, _error(INVALID, "text content must be 1..2048 bytes")
                )
            self.texts.extend((user, content) for user in valid)
        elif body.get("msgtype") == "template_card":
            card = body.get("template_card")
            problem = card_problem(card)
            if problem:
                return self._record(request, body, _error(INVALID, problem))
            task_id = str(card.get("task_id", ""))
            if task_id in self.cards:
                return self._record(request, body, _error(INVALID, f"task_id {task_id} exists"))
            self.cards[task_id] = card
            self.recipients[task_id] = valid
            answer["response_code"] = self.click_code(task_id)
        else:
            return self._record(request, body, _error(INVALID, "msgtype not supported by the fake"))
        return self._record(request, body, web.json_response(answer))

    async def update_template_card(self, request: web.Request) -> web.Response:
        body, refused = await self._app_call(request)
        if refused is not None:
            return self._record(request, body, refused)
        code = self.codes.get(str(body.get("response_code", "")))
        if code is None or code.used or self.now() - code.issued_at > CODE_TTL_S:
            return self._record(request, body, _error(INVALID, "invalid response_code"))
        card = body.get("template_card")
        problem = card_problem(card)
        if problem:
            return self._record(request, body, _error(INVALID, problem))
        if card.get("task_id") != code.task_id:
            return self._record(request, body, _error(INVALID, "task_id differs from the card's"))
        code.used = True
        self.cards[code.task_id] = card
        return self._record(request, body, _error(0, "ok"))

    async def webhook_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return self._record(request, body, _error(93000, "invalid webhook url"))
        if self.fail_next:
            return self._record(request, body, _error(self.fail_next.pop(0), "injected"))
        now = self.now()
        if (
            sum(1 for m in self.webhook_messages[key] if m["at"] > now - 60)
            >= self.webhook_limit_per_min
        ):
            return self._record(request, body, _error(45009, "api freq out of limit"))
        kind = body.get("msgtype")
        content = str(body.get(kind, {}).get("content", "")) if kind in ("markdown", "text") else ""
        if not content or len(content.encode()) > 4096:
            return self._record(request, body, _error(INVALID, "content must be 1..4096 bytes"))
        self.webhook_messages[key].append({"at": now, "msgtype": kind, "content": content})
        return self._record(request, body, _error(0, "ok"))

    async def aibot_response(self, request: web.Request) -> web.Response:
        body = await request.json()
        code = request.query.get("response_code", "")
        issued = self.response_urls.get(code)
        if issued is None or issued[1] or self.now() - issued[0] > RESPONSE_URL_TTL_S:
            return self._record(request, body, _error(INVALID, "invalid response_code"))
        self.response_urls[code] = (issued[0], True)
        self.response_posts.append(body)
        return self._record(request, body, _error(0, "ok"))

    async def _app_call(self, request: web.Request) -> tuple[Any, web.Response | None]:
        body = await request.json()
        token = request.query.get("access_token", "")
        if not token:
            return body, _error(41001, "access_token missing")
        if token not in self.tokens:
            return body, _error(40014, "invalid access_token")
        if self.tokens[token] <= self.now():
            return body, _error(42001, "access_token expired")
        if self.untrusted_ip:
            return body, _error(60020, "not allow to access from your ip, from ip: 203.0.113.7")
        if self.fail_next:
            code = self.fail_next.pop(0)
            return body, _error(code, "injected")
        return body, None

    def _record(self, request: web.Request, body: Any, response: web.Response) -> web.Response:
        assert isinstance(response.text, str)
        errcode = int(json.loads(response.text)["errcode"])
        self.calls.append(Call(request.path, dict(request.query), body, errcode))
        self._changed.set()
        return response


# -- the AI bot's websocket ---------------------------------------------------------------


@dataclass
class Pushed:
    cmd: str
    req_id: str
    at: float
    chatid: str
    userid: str
    task_id: str = ""
    eventtype: str = ""


@dataclass
class FakeWeComAIBot:
    """wss://openws.work.weixin.qq.com as the official SDK meets it, on a local port."""

    bot_id: str = "aibot-fake"
    secret: str = "aibot-secret"
    chats: set[str] = field(default_factory=set)
    # People who have written to the bot one to one: a push to a single chat needs that first.
    singles: set[str] = field(default_factory=set)
    ack_pings: bool = True
    now: Callable[[], float] = time.monotonic
    fail_send: list[int] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    connections: int = 0
    connected_at: list[float] = field(default_factory=list)
    subscribed: int = 0
    kicked: int = 0
    pings: int = 0
    _pushed: dict[str, Pushed] = field(default_factory=dict)
    _ws: web.WebSocketResponse | None = None
    _changed: asyncio.Condition | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.websocket)
        return app

    # -- test side --------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def wait_for(self, check: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until `check()` is truthy (re-checked on every frame) and return it."""
        async with asyncio.timeout(within), self._condition():
            await self._condition().wait_for(check)
        return check()

    async def push_text(
        self, userid: str, content: str, *, chatid: str = "", msgid: str = "", req_id: str = ""
    ) -> str:
        """A person writes to the bot (in `chatid`'s group, or a single chat when empty)."""
        body = self._body(userid, chatid, msgid)
        body |= {"msgtype": "text", "text": {"content": content}}
        if not chatid:
            self.singles.add(userid)
        return await self._push("aibot_msg_callback", body, userid, chatid, req_id=req_id)

    async def click(
        self, userid: str, chatid: str, task_id: str, event_key: str, *, msgid: str = ""
    ) -> str:
        body = self._body(userid, chatid, msgid)
        body |= {
            "msgtype": "event",
            "create_time": int(time.time()),
            "event": {
                "eventtype": "template_card_event",
                "template_card_event": {
                    "card_type": "button_interaction",
                    "event_key": event_key,
                    "task_id": task_id,
                },
            },
        }
        return await self._push("aibot_event_callback", body, userid, chatid, task_id=task_id)

    async def enter_chat(self, userid: str) -> str:
        body = self._body(userid, "", "") | {
            "msgtype": "event",
            "event": {"eventtype": "enter_chat"},
        }
        return await self._push("aibot_event_callback", body, userid, "")

    async def drop(self) -> None:
        """Close the bot's connection from WeCom's side."""
        if self._ws is not None:
            await self._ws.close()

    def card(self, chatid: str, task_id: str) -> dict[str, Any]:
        return self.cards[chatid][task_id]

    def button_keys(self, chatid: str, task_id: str) -> list[str]:
        return [b["key"] for b in self.card(chatid, task_id).get("button_list", [])]

    # -- the server ----------------------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        async with self._condition():
            self._condition().notify_all()

    def _body(self, userid: str, chatid: str, msgid: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgid": msgid or secrets.token_hex(12),
            "aibotid": self.bot_id,
            "chattype": "group" if chatid else "single",
            "from": {"userid": userid},
        }
        if chatid:
            body["chatid"] = chatid
        return body

    async def _push(
        self,
        cmd: str,
        body: dict[str, Any],
        userid: str,
        chatid: str,
        *,
        task_id: str = "",
        req_id: str = "",
    ) -> str:
        if self._ws is None or self._ws.closed:
            raise RuntimeError("the bot is not connected")
        req_id = req_id or secrets.token_hex(16)
        eventtype = str(body.get("event", {}).get("eventtype", ""))
        self._pushed[req_id] = Pushed(cmd, req_id, self.now(), chatid, userid, task_id, eventtype)
        await self._ws.send_str(
            json.dumps({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
        )
        return req_id

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.connected_at.append(time.monotonic())
        authed = False
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.frames.append(frame)
                req_id = str(frame.get("headers", {}).get("req_id", ""))
                cmd = frame.get("cmd")
                if not authed:
                    body = frame.get("body") or {}
                    ok = (
                        cmd == "aibot_subscribe"
                        and body.get("bot_id") == self.bot_id
                        and body.get("secret") == self.secret
                    )
                    await self._ack(
                        ws, req_id, 0 if ok else 40001, "ok" if ok else "invalid credential"
                    )
                    if not ok:
                        await ws.close()
                        break
                    authed = True
                    self.subscribed += 1
                    previous, self._ws = self._ws, ws
                    if previous is not None and not previous.closed:
                        await self._kick(previous)
                else:
                    code, message = self._handle(cmd, req_id, frame.get("body") or {})
                    if code is not None:
                        await self._ack(ws, req_id, code, message)
                await self._notify()
        finally:
            if self._ws is ws:
                self._ws = None
            await self._notify()
        return ws

    async def _kick(self, ws: web.WebSocketResponse) -> None:
        """WeCom keeps one long connection per bot: a newer subscription ends the older one
        with a `disconnected_event` callback, then closes it (SDK 1.0.7 `EventType.Disconnected`)."""
        self.kicked += 1
        body = self._body("", "", "") | {
            "msgtype": "event",
            "create_time": int(time.time()),
            "event": {"eventtype": "disconnected_event"},
        }
        del body["from"], body["chattype"]
        frame = {"cmd": "aibot_event_callback", "headers": {"req_id": secrets.token_hex(16)}}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(frame | {"body": body}))
            await ws.close()

    async def _ack(self, ws: web.WebSocketResponse, req_id: str, code: int, message: str) -> None:
        if code:
            self.refused.append((req_id, code))
        await ws.send_str(
            json.dumps({"headers": {"req_id": req_id}, "errcode": code, "errmsg": message})
        )

    def _handle(self, cmd: Any, req_id: str, body: dict[str, Any]) -> tuple[int | None, str]:
        pushed = self._pushed.get(req_id)
        if cmd == "ping":
            self.pings += 1
            return (0, "ok") if self.ack_pings else (None, "")
        if cmd == "aibot_respond_msg":
            if pushed is None or pushed.cmd != "aibot_msg_callback":
                return INVALID_REQ_ID, "invalid req_id"
            card = body.get("template_card")
            if card is not None:
                problem = card_problem(card)
                if problem:
                    return INVALID, problem
                self.cards[pushed.chatid or pushed.userid][str(card.get("task_id"))] = card
            self.replies[req_id].append(body)
            return 0, "ok"
        if cmd == "aibot_respond_welcome_msg":
            if pushed is None or pushed.eventtype != "enter_chat":
                return INVALID_REQ_ID, "invalid req_id"
            self.replies[req_id].append(body)
            return 0, "ok"
        if cmd == "aibot_respond_update_msg":
            card = body.get("template_card") or {}
            if (
                pushed is None
                or pushed.eventtype != "template_card_event"
                or self.now() - pushed.at > UPDATE_WINDOW_S
                or body.get("response_type") != "update_template_card"
                or card.get("task_id") != pushed.task_id
            ):
                return INVALID_REQ_ID, "invalid req_id"
            problem = card_problem(card)
            if problem:
                return INVALID, problem
            self.cards[pushed.chatid or pushed.userid][pushed.task_id] = card
            self.updates.append((req_id, body))
            return 0, "ok"
        if cmd == "aibot_send_msg":
            if self.fail_send:
                return self.fail_send.pop(0), "injected"
            # chatid: a group's chatid, or for a single chat the userid of someone who has
            # written to the bot before.
            chatid = str(body.get("chatid", ""))
            if not chatid or (self.chats and chatid not in self.chats | self.singles):
                return INVALID, "invalid chatid"
            if body.get("msgtype") == "template_card":
                card = body.get("template_card")
                problem = card_problem(card)
                if problem:
                    return INVALID, problem
                assert isinstance(card, dict)
                self.cards[chatid][str(card.get("task_id"))] = card
            elif body.get("msgtype") != "markdown":
                return INVALID, "msgtype must be markdown or template_card"
            self.messages.append((chatid, body))
            return 0, "ok"
        return INVALID, f"unknown cmd {cmd!r}"


# -- callbacks as WeCom sends them ----------------------------------------------------------


@dataclass
class WeComCallbacks:
    """Builds signed, encrypted callbacks for `/wecom/callback` (app XML) and `/wecom/aibot` (JSON)."""

    crypto: CallbackCrypto
    corp_id: str = ""
    agent_id: int = 0
    clock: Callable[[], float] = time.time

    def query(self, encrypt: str, *, timestamp: str = "", nonce: str = "") -> dict[str, str]:
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or secrets.token_hex(6)
        return {
            "msg_signature": self.crypto.sign(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }

    def url_check(self, echo: str) -> dict[str, str]:
        sealed = self.crypto.encrypt(echo)
        return {**self.query(sealed["encrypt"]), "echostr": sealed["encrypt"]}

    def app(self, fields: dict[str, str | int]) -> tuple[str, bytes]:
        """(query string, body) for a decrypted message made of `fields`."""
        inner = (
            "<xml>"
            + "".join(
                f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{cdata(v)}</{k}>"
                for k, v in fields.items()
            )
            + "</xml>"
        )
        encrypt = self.crypto.encrypt(inner)["encrypt"]
        body = (
            f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName>"
            f"<AgentID>{cdata(str(self.agent_id))}</AgentID>"
            f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>"
        )
        return urlencode(self.query(encrypt)), body.encode()

    def app_text(self, user: str, content: str, msg_id: str = "") -> tuple[str, bytes]:
        return self.app(
            {
                "ToUserName": self.corp_id,
                "FromUserName": user,
                "CreateTime": int(self.clock()),
                "MsgType": "text",
                "Content": content,
                "MsgId": msg_id or str(secrets.randbits(62)),
                "AgentID": self.agent_id,
            }
        )

    def app_click(
        self, user: str, task_id: str, key: str, response_code: str, *, create_time: int = 0
    ) -> tuple[str, bytes]:
        return self.app(
            {
                "ToUserName": self.corp_id,
                "FromUserName": user,
                "CreateTime": create_time or int(self.clock()),
                "MsgType": "event",
                "Event": "template_card_event",
                "EventKey": key,
                "TaskId": task_id,
                "CardType": "button_interaction",
                "ResponseCode": response_code,
                "AgentID": self.agent_id,
            }
        )

    def aibot(self, body: dict[str, Any]) -> tuple[str, bytes]:
        """(query string, body) for the AI bot's HTTP mode: `{"encrypt": ...}`."""
        encrypt = self.crypto.encrypt(json.dumps(body, ensure_ascii=False))["encrypt"]
        return urlencode(self.query(encrypt)), json.dumps({"encrypt": encrypt}).encode()

    def open_json(self, answer: bytes) -> Any:
        """Decrypt an AI-bot passive reply, checking its signature."""
        sealed = json.loads(answer)
        plain = self.crypto.decrypt(
            sealed["encrypt"], sealed["msgsignature"], sealed["timestamp"], sealed["nonce"], now=0
        )
        return json.loads(plain)

    def open_xml(self, answer: bytes) -> dict[str, Any]:
        sealed = parse_xml(answer)
        plain = self.crypto.decrypt(
            sealed["Encrypt"], sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"], now=0
        )
        return parse_xml(plain)

"""WeCom callbacks: `GET|POST /wecom/callback` (self-built app, encrypted XML) and
`GET|POST /wecom/aibot` (AI bot in HTTP mode, encrypted JSON, receive id "").

Verification is a filter in front of the work: bad signatures, wrong receive ids, replays
outside `callback_max_skew_s` and malformed or entity-laden XML get a 4xx at once. The URL
check (GET) answers the decrypted echostr alone and never applies the replay window.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from bot.keys import DISPATCHER, METRICS, SERVICES, SETTINGS
from bot.routes.verification import verified
from bot.wecom import Bridge, perform_now, words_for
from handlers.message import Reply
from handlers.payload import PayloadError, loads
from integrations.wecom import render
from integrations.wecom.aibot import WELCOME, reply_body, unknown_group
from integrations.wecom.crypto import (
    CallbackCrypto,
    CallbackRejectedError,
    cdata,
    parse_xml,
    valid_aes_key,
)
from integrations.wecom.models import AibotBody, AppMessage, Inbound, Outcome

log = logging.getLogger(__name__)

app_routes = web.RouteTableDef()
aibot_routes = web.RouteTableDef()

# The passive answer for an outcome, and the words still owed to the person by message.
Passive = Callable[[Outcome], tuple[web.Response, Reply | None]]

SIGNED = ("msg_signature", "timestamp", "nonce")


def _rejected(exc: CallbackRejectedError, request: web.Request) -> web.Response:
    log.info("WeCom callback %s refused (%d): %s", request.path, exc.status, exc.reason)
    return web.Response(status=exc.status, text=exc.reason)


def _signed(request: web.Request, *extra: str) -> dict[str, str]:
    missing = [k for k in (*SIGNED, *extra) if not request.query.get(k)]
    if missing:
        raise CallbackRejectedError(400, f"missing {', '.join(missing)}")
    # A "+" the sender left unescaped arrives as a space; base64 has no spaces.
    return {k: request.query[k].replace(" ", "+") for k in (*SIGNED, *extra)}


def _crypto(token: str, key: str, receive_id: str, skew: int) -> CallbackCrypto:
    if not token or not valid_aes_key(key):
        # check-config names the missing key; WeCom gets a retryable answer meanwhile.
        raise web.HTTPServiceUnavailable(text="callback token / EncodingAESKey not configured")
    return CallbackCrypto(token, key, receive_id, max_skew_s=skew)


def app_crypto(request: web.Request) -> CallbackCrypto:
    wecom = request.app[SETTINGS].wecom
    return _crypto(
        wecom.token.get_secret_value(),
        wecom.encoding_aes_key.get_secret_value(),
        wecom.corp_id,
        wecom.callback_max_skew_s,
    )


def aibot_crypto(request: web.Request) -> CallbackCrypto:
    wecom = request.app[SETTINGS].wecom
    return _crypto(
        wecom.aibot.token.get_secret_value(),
        wecom.aibot.encoding_aes_key.get_secret_value(),
        "",
        wecom.callback_max_skew_s,
    )


def _decrypt(request: web.Request, crypto: CallbackCrypto, encrypt: object) -> str:
    q = _signed(request)
    if not isinstance(encrypt, str) or not encrypt:
        raise CallbackRejectedError(400, "no Encrypt in the body")
    now = request.app[SERVICES].clock.now().timestamp()
    return crypto.decrypt(encrypt, q["msg_signature"], q["timestamp"], q["nonce"], now=now)


def _open_xml(request: web.Request, crypto: CallbackCrypto, raw: bytes) -> str:
    """The app's XML: the outer envelope's `Encrypt`, decrypted."""
    return _decrypt(request, crypto, parse_xml(raw).get("Encrypt"))


def _open_json(request: web.Request, crypto: CallbackCrypto, raw: bytes) -> str:
    """The AI bot's JSON: msg_signature first, so nothing the sender wrote is parsed before
    it checks out; then the signed `encrypt`, decrypted."""
    q = _signed(request)
    signed = crypto.signed_json_encrypt(raw, q["msg_signature"], q["timestamp"], q["nonce"])
    try:
        sealed = loads(raw)
    except PayloadError as exc:
        raise CallbackRejectedError(400, exc.errors[0]["message"]) from None
    encrypt = sealed.get("encrypt") if isinstance(sealed, dict) else None
    if encrypt != signed:
        raise CallbackRejectedError(400, "encrypt is not the signed member")
    return _decrypt(request, crypto, encrypt)


CRYPTO = web.RequestKey("wecom_crypto", CallbackCrypto)
PLAIN = web.RequestKey("wecom_plain", str)


@dataclass(frozen=True)
class WecomCallback:
    """A WeCom callback's msg_signature, receive id and replay window: the URL check (GET)
    leaves the decrypted echostr, a POST its decrypted message; either is refused 4xx here."""

    crypto: Callable[[web.Request], CallbackCrypto]
    open: Callable[[web.Request, CallbackCrypto, bytes], str]

    async def verify(self, request: web.Request) -> web.Response | None:
        crypto = self.crypto(request)
        try:
            if request.method != "POST":
                q = _signed(request, "echostr")
                plain = crypto.verify_url(
                    q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
                )
            else:
                plain = self.open(request, crypto, await request.read())
        except CallbackRejectedError as exc:
            return _rejected(exc, request)
        request[CRYPTO] = crypto
        request[PLAIN] = plain
        return None


APP = WecomCallback(app_crypto, _open_xml)
AIBOT = WecomCallback(aibot_crypto, _open_json)


async def answer(
    request: web.Request, inbound: Inbound, passive: Passive, *, redrawn: bool
) -> web.StreamResponse:
    """Take the input once, work on it up to `passive_wait_s`, answer; finish by message if late."""
    app = request.app
    bridge = Bridge(app[SERVICES], app[METRICS])
    item_id = await bridge.accept(inbound)
    if item_id is None:
        return web.Response(text="")
    dispatcher = app[DISPATCHER]
    work = asyncio.ensure_future(bridge.run(inbound, dispatcher))
    try:
        done, _ = await asyncio.wait({work}, timeout=app[SETTINGS].wecom.passive_wait_s)
    except asyncio.CancelledError:
        # Shutting down: the input stays in the outbox and the dispatcher finishes it later.
        work.cancel()
        raise
    if work in done:
        response, words = passive(work.result())
        reply_id = await bridge.finish(item_id, inbound, words)
        await response.prepare(request)
        await response.write_eof()
    else:
        response = web.Response(text="")
        await response.prepare(request)
        await response.write_eof()
        outcome = await work
        reply_id = await bridge.finish(
            item_id, inbound, words_for(inbound, outcome, redrawn=redrawn)
        )
    if reply_id is not None:
        await perform_now(dispatcher, reply_id)
    return response


# -- the self-built app ------------------------------------------------------------------------


@app_routes.get("/wecom/callback")
@verified(APP)
async def app_url_check(request: web.Request) -> web.Response:
    return _echo(request)


def _echo(request: web.Request) -> web.Response:
    return web.Response(text=request[PLAIN], content_type="text/plain")


@app_routes.post("/wecom/callback")
@verified(APP)
async def app_callback(request: web.Request) -> web.StreamResponse:
    crypto = request[CRYPTO]
    try:
        message = AppMessage.model_validate(parse_xml(request[PLAIN]))
    except CallbackRejectedError as exc:
        return _rejected(exc, request)
    except ValidationError:
        return web.Response(status=400, text="unexpected message fields")
    if message.msg_type == "text":
        inbound = Inbound(
            channel="wecom_app",
            user=message.from_user,
            dedup=message.dedup,
            conversation=message.from_user,
            chattype="single",
            text=message.content,
        )
    elif message.msg_type == "event" and message.event == "template_card_event":
        inbound = Inbound(
            channel="wecom_app",
            user=message.from_user,
            dedup=message.dedup,
            conversation=message.from_user,
            chattype="single",
            key=message.event_key,
            task_id=message.task_id,
            response_code=message.response_code,
        )
    else:
        return web.Response(text="")
    corp_id = request.app[SETTINGS].wecom.corp_id

    def passive(outcome: Outcome) -> tuple[web.Response, Reply | None]:
        if inbound.key:
            return web.Response(text=""), (outcome.reply if outcome.tell else None)
        content = render.plain_text(outcome.reply.text, outcome.reply.mentions)
        now = str(int(request.app[SERVICES].clock.now().timestamp()))
        plain = (
            f"<xml><ToUserName>{cdata(inbound.user)}</ToUserName>"
            f"<FromUserName>{cdata(corp_id)}</FromUserName><CreateTime>{now}</CreateTime>"
            f"<MsgType>{cdata('text')}</MsgType><Content>{cdata(content)}</Content></xml>"
        )
        sealed = crypto.encrypt_xml(plain, timestamp=now, nonce=secrets.token_hex(8))
        return web.Response(text=sealed, content_type="text/xml"), None

    return await answer(request, inbound, passive, redrawn=True)


# -- the AI bot, HTTP mode ---------------------------------------------------------------------


@aibot_routes.get("/wecom/aibot")
@verified(AIBOT)
async def aibot_url_check(request: web.Request) -> web.Response:
    return _echo(request)


@aibot_routes.post("/wecom/aibot")
@verified(AIBOT)
async def aibot_callback(request: web.Request) -> web.StreamResponse:
    crypto = request[CRYPTO]
    try:
        body = AibotBody.model_validate_json(request[PLAIN])
    except ValidationError:
        return web.Response(status=400, text="unexpected message fields")
    settings = request.app[SETTINGS]
    now = str(int(request.app[SERVICES].clock.now().timestamp()))
    nonce = secrets.token_hex(8)
    if body.event is not None and body.event.eventtype == "enter_chat":
        welcome = {"msgtype": "text", "text": {"content": WELCOME}}
        return web.Response(
            text=crypto.encrypt_json(welcome, timestamp=now, nonce=nonce),
            content_type="application/json",
        )
    card_event = body.card_event
    if body.msgtype not in ("text", "mixed") and card_event is None:
        return web.Response(text="")
    group = next(
        (
            g
            for g in settings.groups
            if g.channel == "wecom_aibot_http" and g.chat_id and g.chat_id == body.chatid
        ),
        None,
    )
    inbound = Inbound(
        channel="wecom_aibot_http",
        user=body.sender.userid,
        dedup=f"aibot:{body.msgid}",
        conversation=body.conversation,
        group_id=group.id if group else "",
        chattype=body.chattype,
        text=body.content,
        key=card_event.event_key if card_event else "",
        task_id=card_event.task_id if card_event else "",
        response_url=body.response_url,
    )
    userids = request.app[SERVICES].staff.accounts("wecom")

    def passive(outcome: Outcome) -> tuple[web.Response, Reply | None]:
        words: Reply | None = None
        if not inbound.key:
            if body.chattype == "group" and group is None:
                outcome = unknown_group(outcome, body.chatid, inbound.channel, settings)
            payload = reply_body(outcome, userids, settings.bot.name)
        elif outcome.card is not None:
            card = render.template_card(outcome.card, inbound.task_id, source=settings.bot.name)
            payload = {"response_type": "update_template_card", "template_card": card}
            words = outcome.reply if outcome.tell else None
        else:
            return web.Response(text=""), outcome.reply
        text = crypto.encrypt_json(payload, timestamp=now, nonce=nonce)
        return web.Response(text=text, content_type="application/json"), words

    return await answer(request, inbound, passive, redrawn=False)

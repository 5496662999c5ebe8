"""Platform pushes: `POST /connectors/douyin/{shop}` (抖店 message push).

抖店 signs each push `event-sign = md5(app_key + raw body + app_secret)` and redelivers until
it is answered `{"code":0,"msg":"success"}`; we answer so only once every message is stored
(any failure answers `{"code":1,"msg":"fail"}`). A replayed push is harmless: messages are
kept once per `msg_id`, and what a message means is always read back from the platform's API.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bot.keys import SERVICES, SETTINGS
from bot.routes.verification import verified
from bot.shops import store_messages, store_unreadable
from integrations.douyin.signing import verify_event
from integrations.shop.connector import PlatformMessage
from integrations.shop.settings import ShopSettings

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
PUSH_BODY = web.RequestKey("push_body", bytes)
PUSH_SHOP = web.RequestKey("push_shop", ShopSettings)
SUCCESS = {"code": 0, "msg": "success"}
FAIL = {"code": 1, "msg": "fail"}


def _fail(status: int) -> web.Response:
    return web.json_response(FAIL, status=status)


class DouyinPush:
    """The shop must have a 抖店 connector, and the body its app's `event-sign`."""

    async def verify(self, request: web.Request) -> web.Response | None:
        settings = request.app[SETTINGS]
        shop_id = request.match_info["shop"]
        shop = next(
            (s for s in settings.shops if s.id == shop_id and s.connector == "douyin"), None
        )
        if shop is None:
            return _fail(404)
        limit = settings.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _fail(413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _fail(413)
        sign = request.headers.get("event-sign", "")
        if not verify_event(shop.app_key, shop.app_secret.get_secret_value(), body, sign):
            return _fail(401)
        request[PUSH_BODY] = body
        request[PUSH_SHOP] = shop
        return None


def messages_of(body: bytes) -> list[PlatformMessage] | None:
    """The messages of a push (a JSON array of {tag, msg_id, data}), or None when unreadable."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, list) or not parsed:
        return None
    found = []
    for element in parsed:
        if not isinstance(element, dict):
            return None
        msg_id, tag = element.get("msg_id"), element.get("tag")
        if not isinstance(msg_id, str | int) or not str(msg_id) or not isinstance(tag, str | int):
            return None
        found.append(PlatformMessage(id=str(msg_id), topic=str(tag), body=element))
    return found


@routes.post("/connectors/douyin/{shop}")
@verified(DouyinPush())
async def douyin_push(request: web.Request) -> web.Response:
    body, shop = request[PUSH_BODY], request[PUSH_SHOP]
    messages = messages_of(body)
    try:
        async with request.app[SERVICES].tx(urgent=True) as tx:
            if messages is None:
                await store_unreadable(tx, shop.id, body, "不是 抖店 消息数组")
            else:
                await store_messages(tx, shop.id, messages)
    except Exception:
        log.exception(
            "抖店 push for shop %s could not be stored; the platform will redeliver", shop.id
        )
        return web.json_response(FAIL)
    return web.json_response(SUCCESS)

"""DingTalk app robot in HTTP mode: `POST /dingtalk/robot` (@-messages), `POST /dingtalk/card` (taps).

Both carry `timestamp` (ms) and `sign` headers, checked against the app secret within
`dingtalk.callback_max_skew_s` (constant-time) before the body is read; bad bodies get 400.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.dingtalk import DingtalkInbound
from bot.keys import DISPATCHER, SERVICES, SETTINGS
from handlers.schema import field_errors
from integrations.dingtalk.channel import DingtalkChannel
from integrations.dingtalk.models import CardCallback, RobotMessage
from integrations.dingtalk.signing import SIGN_HEADER, TIMESTAMP_HEADER, verify

routes = web.RouteTableDef()


@routes.post("/dingtalk/robot")
async def robot(request: web.Request) -> web.Response:
    inbound = _inbound(request)
    message: RobotMessage = await _verified_body(request, RobotMessage)
    await inbound.on_robot_message(message)
    return web.json_response({})


@routes.post("/dingtalk/card")
async def card(request: web.Request) -> web.Response:
    inbound = _inbound(request)
    callback: CardCallback = await _verified_body(request, CardCallback)
    answer = await inbound.on_card_callback(callback)
    return web.json_response(answer or {}, dumps=_dumps)


def _inbound(request: web.Request) -> DingtalkInbound:
    channel = request.app[DISPATCHER].channels.get("dingtalk_http")
    if not isinstance(channel, DingtalkChannel):
        raise _error(web.HTTPNotFound, "no dingtalk_http group is configured")
    return DingtalkInbound(request.app, channel)


async def _verified_body(request: web.Request, model: type[BaseModel]) -> Any:
    settings = request.app[SETTINGS].dingtalk
    now_ms = int(request.app[SERVICES].clock.now().timestamp() * 1000)
    problem = verify(
        settings.app_secret.get_secret_value(),
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(SIGN_HEADER),
        now_ms=now_ms,
        max_skew_s=settings.callback_max_skew_s,
    )
    if problem:
        raise _error(web.HTTPUnauthorized, problem)
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise _error(web.HTTPBadRequest, "invalid body", fields=field_errors(exc)) from exc


def _error(kind: type[web.HTTPError], message: str, **extra: Any) -> web.HTTPError:
    return kind(text=_dumps({"error": message, **extra}), content_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

"""DingTalk app robot in HTTP mode: `POST /dingtalk/robot` (@-messages), `POST /dingtalk/card` (taps).

Before the body is read: robot messages carry `timestamp` (ms) and `sign` (the app secret),
card callbacks `x-ddpaas-signature-timestamp` and `x-ddpaas-signature` (the apiSecret we
registered); either is checked in constant time within `dingtalk.callback_max_skew_s`, and a
signature is accepted once across instances (SET NX, kept while it could still be
accepted). Neither covers the body, so a robot message must also come from our corp and
robot and have been created when it was signed, and a tap must be on one of our own cards
by someone of our corp. Refused: 401 (404 for a card that is not ours); bad bodies get 400.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.dingtalk import DingtalkInbound
from bot.keys import DINGTALK_HTTP, SERVICES, SETTINGS
from bot.routes.verification import verified
from handlers.schema import field_errors
from integrations.dingtalk.models import CardCallback, RobotMessage
from integrations.dingtalk.signing import (
    CARD_SIGN_HEADER,
    CARD_TIMESTAMP_HEADER,
    SIGN_HEADER,
    TIMESTAMP_HEADER,
    replay_ttl_s,
    robot_message_problem,
    signed_ms,
    verify,
    verify_card,
)

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


class Check(Protocol):
    def __call__(
        self,
        secret: str,
        timestamp: str | None,
        signature: str | None,
        *,
        now_ms: int,
        max_skew_s: int,
    ) -> str | None: ...


SIGNED_AT = web.RequestKey("dingtalk_signed_at", str)


@dataclass(frozen=True)
class DingtalkSignature:
    """A callback's timestamp and signature headers (the app secret), checked in constant
    time within the allowed skew, and accepted once across instances: a signature seen before
    (here or on another instance) is refused. Leaves the verified timestamp header."""

    surface: str
    ts_header: str
    sign_header: str
    check: Check

    async def verify(self, request: web.Request) -> None:
        _inbound(request)
        ding = request.app[SETTINGS].dingtalk
        problem = self.check(
            ding.app_secret.get_secret_value(),
            request.headers.get(self.ts_header),
            request.headers.get(self.sign_header),
            now_ms=_now_ms(request),
            max_skew_s=ding.callback_max_skew_s,
        )
        if problem:
            raise _error(web.HTTPUnauthorized, problem)
        timestamp, signature = request.headers[self.ts_header], request.headers[self.sign_header]
        ttl = replay_ttl_s(ding.callback_max_skew_s)
        key = f"dingtalk:signed:{self.surface}:{timestamp}:{signature}"
        if not await request.app[SERVICES].coord.first_seen(key, ttl):
            log.warning("dingtalk %s callback signed at %s again; refused", self.surface, timestamp)
            raise _error(
                web.HTTPUnauthorized, f"{self.ts_header} and {self.sign_header} already used"
            )
        request[SIGNED_AT] = timestamp


@routes.post("/dingtalk/robot")
@verified(DingtalkSignature("robot", TIMESTAMP_HEADER, SIGN_HEADER, verify))
async def robot(request: web.Request) -> web.Response:
    inbound = _inbound(request)
    ding = request.app[SETTINGS].dingtalk
    message: RobotMessage = await _body(request, RobotMessage)
    problem = robot_message_problem(
        message,
        signed_ms(request[SIGNED_AT]),
        robot_code=inbound.channel.client.robot_code,
        corp_id=ding.corp_id,
        max_skew_s=ding.callback_max_skew_s,
    )
    if problem:
        log.warning("dingtalk robot message %s refused: %s", message.msg_id, problem)
        raise _error(web.HTTPUnauthorized, problem)
    await inbound.on_robot_message(message)
    return web.json_response({})


@routes.post("/dingtalk/card")
@verified(DingtalkSignature("card", CARD_TIMESTAMP_HEADER, CARD_SIGN_HEADER, verify_card))
async def card(request: web.Request) -> web.Response:
    inbound = _inbound(request)
    ding = request.app[SETTINGS].dingtalk
    callback: CardCallback = await _body(request, CardCallback)
    if not ding.corp_id or callback.corp_id != ding.corp_id:
        log.warning("dingtalk card tap on %s refused: corpId", callback.out_track_id)
        raise _error(web.HTTPUnauthorized, "corpId is not this organisation's corp id")
    async with request.app[SERVICES].tx() as tx:
        ours = await tx.cards.by_ref(inbound.channel.name, callback.out_track_id)
    if ours is None and await inbound.channel.notice_card_ref(callback.out_track_id) is None:
        log.warning("dingtalk card tap on %s refused: not our card", callback.out_track_id)
        raise _error(web.HTTPNotFound, "outTrackId is not a card of this deployment")
    answer = await inbound.on_card_callback(callback)
    return web.json_response(answer or {}, dumps=_dumps)


def _inbound(request: web.Request) -> DingtalkInbound:
    channel = request.app.get(DINGTALK_HTTP)
    if channel is None:
        raise _error(web.HTTPNotFound, "no dingtalk_http group is configured")
    return DingtalkInbound(request.app, channel)


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise _error(web.HTTPBadRequest, "invalid body", fields=field_errors(exc)) from exc


def _now_ms(request: web.Request) -> int:
    return int(request.app[SERVICES].clock.now().timestamp() * 1000)


def _error(kind: type[web.HTTPError], message: str, **extra: Any) -> web.HTTPError:
    return kind(text=_dumps({"error": message, **extra}), content_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

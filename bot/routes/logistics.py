"""`POST /logistics/kuaidi100`: 快递100 tracking pushes, verified and stored as `shipment.tracking`
events, answered `{"result": true, "returnCode": "200", "message": "成功"}` as the vendor expects."""

from __future__ import annotations

import json
import logging
from functools import partial

from aiohttp import web
from pydantic import ValidationError

from bot.keys import METRICS, SERVICES, SETTINGS
from bot.routes.verification import verified
from bot.shops import store_events
from handlers.schema import InvalidEventError, parse_event
from integrations.kuaidi100.callback import ACK as CALLBACK_ACK
from integrations.kuaidi100.callback import CallbackError, intercept_result
from integrations.kuaidi100.models import Push
from integrations.kuaidi100.signing import verify
from integrations.sf.models import PUSH_ACK, RoutePush
from integrations.sf.signing import push_token_ok

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# Query parameters on the subscribed callbackurl (`order_id`, `shop`, `platform`) come
# back with every push. A push is stored once, under an id made of the parcel, its state
# and the newest scan time; anything but the success answer makes 快递100 push again.


def answer(ok: bool, message: str, status: int = 200) -> web.Response:
    return web.json_response(
        {"result": ok, "returnCode": str(status), "message": message},
        status=status,
        dumps=partial(json.dumps, ensure_ascii=False),
    )


PARAM = web.RequestKey("kuaidi100_param", str)


class Kuaidi100Sign:
    """The form's `sign` over its `param` with our salt; leaves the verified `param`."""

    async def verify(self, request: web.Request) -> web.Response | None:
        form = await request.post()
        param, signature = form.get("param"), form.get("sign")
        if not isinstance(param, str) or not isinstance(signature, str):
            return answer(False, "缺少 param 或 sign", 400)
        salt = request.app[SETTINGS].carrier.kuaidi100_salt.get_secret_value()
        if not verify(param, salt, signature):
            request.app[METRICS].events.labels("rejected").inc()
            return answer(False, "签名错误", 401)
        request[PARAM] = param
        return None


@routes.post("/logistics/kuaidi100")
@verified(Kuaidi100Sign())
async def kuaidi100(request: web.Request) -> web.Response:
    param = request[PARAM]
    try:
        push = Push.model_validate_json(param)
        raw = push.tracking(
            order_id=request.query.get("order_id", ""),
            shop=request.query.get("shop", ""),
            platform=request.query.get("platform", ""),
        )
        envelope = parse_event(raw)[0] if raw is not None else None
    except (ValidationError, ValueError, InvalidEventError) as exc:
        log.warning("kuaidi100 push refused: %s", exc)
        request.app[METRICS].events.labels("rejected").inc()
        return answer(False, f"param 无法解析：{str(exc)[:200]}", 400)
    if envelope is None or raw is None:
        # 3天查询无记录 and other pushes without scans carry nothing to record.
        return answer(True, "成功")
    async with request.app[SERVICES].tx() as tx:
        new = await tx.events.add(
            event_id=envelope.id,
            type=envelope.type,
            shop=envelope.shop,
            platform=envelope.platform,
            occurred_at=envelope.occurred_at,
            body=raw,
            now=tx.now,
        )
    request.app[METRICS].events.labels("accepted" if new else "duplicate").inc()
    return answer(True, "成功")


# -- intercept results and route pushes from the carriers ----------------------------------

intercept_routes = web.RouteTableDef()


@intercept_routes.post("/carrier/kuaidi100/intercept")
async def kuaidi100_intercept(request: web.Request) -> web.Response:
    """快递100's intercept result (the `callbackUrl` given with each interceptOrder): signed with
    the request's `salt` (`[carrier.kuaidi100] callback_salt`), stored as `intercept.result`."""
    settings = request.app[SETTINGS].carrier.kuaidi100
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        raw = intercept_result(
            form, salt=settings.callback_salt.get_secret_value(), fields=settings.callback
        )
    except CallbackError as exc:
        request.app[METRICS].events.labels("rejected").inc()
        return answer(False, str(exc)[:200], 401 if "sign" in str(exc) else 400)
    async with request.app[SERVICES].tx() as tx:
        raw.setdefault("occurred_at", tx.now.isoformat())
        await store_events(tx, [raw], source=f"kuaidi100:{raw['id']}")
    return web.json_response(CALLBACK_ACK)


@intercept_routes.post("/carrier/sf/routes/{token}")
async def sf_routes(request: web.Request) -> web.Response:
    """顺丰 丰桥 route pushes: unsigned by 丰桥, so the URL carries a secret token
    (`[carrier.sf] push_token`); each route node becomes a `shipment.tracking` event."""
    token = request.app[SETTINGS].carrier.sf.push_token.get_secret_value()
    if not push_token_ok(request.match_info["token"], token):
        return web.json_response({"return_code": "1000", "return_msg": "未授权"}, status=401)
    try:
        found = RoutePush.model_validate_json(await request.read()).tracking()
    except ValidationError as exc:
        return web.json_response(
            {"return_code": "1000", "return_msg": f"无法解析：{str(exc)[:120]}"}, status=400
        )
    async with request.app[SERVICES].tx() as tx:
        await store_events(tx, found, source="sf:routes")
    return web.json_response(PUSH_ACK, dumps=partial(json.dumps, ensure_ascii=False))

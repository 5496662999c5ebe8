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
from handlers.schema import InvalidEventError, parse_event
from integrations.kuaidi100.models import Push
from integrations.kuaidi100.signing import verify

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

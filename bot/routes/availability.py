"""While Redis cannot be reached, a request that needs it (inbound dedup, a lock) is answered
503 with Retry-After before anything is stored, so its sender tries again later."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from storage.coordination import CoordinationError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


@web.middleware
async def unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CoordinationError as exc:
        log.warning("%s %s answered 503: %s", request.method, request.path, exc)
        return web.json_response(
            {"error": "temporarily unavailable, try again"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

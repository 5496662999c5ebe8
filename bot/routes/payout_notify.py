"""`POST /payout/wechatpay/notify`: WeChat Pay's transfer result (MCHTRANSFER.BILL.FINISHED).

The notification is verified (WeChat Pay's signature over timestamp, nonce and body, within
`max_skew_s`) and decrypted (AES-GCM with the APIv3 key) before anything in it is read; one
that is not WeChat Pay's is refused 401 `{"code":"FAIL"}`. A verified one only restates what
the bill is: recording it twice, or after the poll already did, changes nothing.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.keys import SERVICES, SETTINGS
from bot.routes.verification import verified
from bot.transfer import OUTCOME
from handlers.payout import outcome as payout
from handlers.payout.machine import S
from integrations.wechatpay.client import out_bill_no
from integrations.wechatpay.notify import (
    BadNotificationError,
    TransferNotice,
    WechatPayNotifications,
)
from storage.repositories import StaleCaseError
from storage.repositories.payouts import PayoutRepository

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
NOTICE = web.RequestKey("wechatpay_notice", TransferNotice)
# Payouts in flight looked through for the bill a notification names.
IN_FLIGHT = 1000
STALE_RETRIES = 5


def _fail(status: int, message: str) -> web.Response:
    return web.json_response({"code": "FAIL", "message": message}, status=status)


class WechatPayNotice:
    async def verify(self, request: web.Request) -> web.Response | None:
        settings = request.app[SETTINGS]
        limit = settings.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _fail(413, "too large")
        try:
            body = await request.text()
        except web.HTTPRequestEntityTooLarge:
            return _fail(413, "too large")
        reader = WechatPayNotifications(settings.payout.wechatpay, request.app[SERVICES].clock)
        try:
            request[NOTICE] = reader.read(request.headers, body)
        except BadNotificationError as exc:
            return _fail(401, str(exc)[:200])
        return None


@routes.post("/payout/wechatpay/notify")
@verified(WechatPayNotice())
async def wechatpay_notify(request: web.Request) -> web.StreamResponse:
    notice = request[NOTICE]
    # The payout may change under us (the poll, a card update on another instance): read it
    # again; if it keeps changing, WeChat Pay is asked to send the notification again.
    for _ in range(STALE_RETRIES):
        try:
            await _settle(request, notice)
        except StaleCaseError:
            continue
        return web.Response(status=204)
    log.warning(
        "WeChat Pay notification for %s not recorded: the payout kept changing", notice.out_bill_no
    )
    return _fail(503, "busy, send again")


async def _settle(request: web.Request, notice: TransferNotice) -> None:
    result = notice.result
    async with request.app[SERVICES].tx() as tx:
        payouts = PayoutRepository(tx.session)
        for case in await payouts.in_states([S.PAYING.value], limit=IN_FLIGHT):
            row = await payouts.get(case.id)
            if row is None or out_bill_no(row.out_biz_no) != notice.out_bill_no:
                continue
            await payout.on_transfer_result(
                tx,
                case,
                out_biz_no=row.out_biz_no,
                status=OUTCOME.get(result.status, "unknown"),
                reference=result.reference,
                provider_status=result.provider_status,
                detail=result.detail,
                confirm=result.confirm,
            )

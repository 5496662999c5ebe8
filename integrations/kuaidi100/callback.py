"""The 快递100 intercept result callback: a form post to `callbackUrl` with `param` (JSON) and
`sign`, verified and turned into our `intercept.result` event.

Its field names and values are not public (the demos only send `callbackUrl` and `salt`,
"回调加密参数"), so they come from `[carrier.kuaidi100.callback]`. The sign is taken to be the
one 快递100's salted callbacks use, `UPPER(MD5(param + salt))` (the tracking push): the
request's `salt` is documented as the callback's signing value, the formula is inferred.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from integrations.carrier.names import carrier_code
from integrations.kuaidi100.settings import CallbackFields
from integrations.kuaidi100.signing import verify

# What 快递100 expects back, as for the tracking push.
ACK = {"result": True, "returnCode": "200", "message": "成功"}


class CallbackError(ValueError):
    """The callback is not signed with our salt, or does not say what happened."""


def intercept_result(
    form: Mapping[str, str],
    *,
    salt: str,
    fields: CallbackFields,
    shop: str = "",
    platform: str = "",
) -> dict[str, Any]:
    """The verified callback as an `intercept.result` envelope; raises CallbackError."""
    param = form.get("param", "")
    if not param or not verify(param, salt, form.get("sign", "")):
        raise CallbackError("kuaidi100 intercept callback: bad or missing sign")
    try:
        body = json.loads(param)
    except ValueError as exc:
        raise CallbackError("kuaidi100 intercept callback: param is not JSON") from exc
    if not isinstance(body, dict):
        raise CallbackError("kuaidi100 intercept callback: param is not an object")
    tracking_no = str(body.get(fields.tracking_no) or "").strip()
    status = str(body.get(fields.status) or "").strip()
    result = _result(status, fields)
    if not tracking_no or result is None:
        raise CallbackError(f"kuaidi100 intercept callback: unknown result {status!r}")
    carrier = carrier_code(str(body.get(fields.company) or ""))
    detail = str(body.get(fields.detail) or "").strip()
    digest = hashlib.sha256(param.encode()).hexdigest()[:16]
    return {
        "id": f"kuaidi100:intercept:{carrier}:{tracking_no}:{digest}",
        "type": "intercept.result",
        "shop": shop,
        "platform": platform,
        "data": {
            "carrier": carrier,
            "tracking_no": tracking_no,
            "result": result,
            "detail": detail or _DEFAULT_DETAIL[result],
        },
    }


_DEFAULT_DETAIL = {
    "intercepted": "快递100回报：拦截成功",
    "failed": "快递100回报：拦截失败",
    "returned": "快递100回报：快件已退回",
}


def _result(status: str, fields: CallbackFields) -> str | None:
    folded = status.upper()
    for result, values in (
        ("intercepted", fields.intercepted),
        ("failed", fields.failed),
        ("returned", fields.returned),
    ):
        if folded in (v.upper() for v in values):
            return result
    return None

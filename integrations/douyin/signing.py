"""抖店 signatures: the request `sign` over a fixed pattern, and the push `event-sign` header.

Request (official Go SDK `utils/sign_util.go`): pattern = secret + "app_key"<k> + "method"<m> +
"param_json"<json> + "timestamp"<ts> + "v"<v> + secret, the parameters in that fixed order;
`hmac-sha256` signs it keyed with the secret, legacy `md5` hashes it; both lower-case hex.
`param_json` is the body itself: keys sorted at every level, compact, UTF-8 kept, no HTML
escaping (the SDK re-encodes with `SetEscapeHTML(false)`; Go still escapes U+2028/U+2029).
Push (SDK `message/doudian_sign.go`; guide-docs/153/99): `event-sign = md5(app_key + raw body +
app_secret)`, compared case-insensitively.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGN_METHODS = ("hmac-sha256", "md5")


def param_json(params: Mapping[str, Any]) -> str:
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def pattern(
    app_key: str, app_secret: str, method: str, body: str, timestamp: str, v: str = "2"
) -> str:
    return (
        f"{app_secret}app_key{app_key}method{method}param_json{body}"
        f"timestamp{timestamp}v{v}{app_secret}"
    )


def sign(
    app_key: str,
    app_secret: str,
    method: str,
    body: str,
    timestamp: str,
    *,
    sign_method: str = "hmac-sha256",
    v: str = "2",
) -> str:
    text = pattern(app_key, app_secret, method, body, timestamp, v).encode()
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(text, usedforsecurity=False).hexdigest()
    raise ValueError(f"抖店 sign_method must be one of {SIGN_METHODS}, not {sign_method!r}")


def event_sign(app_key: str, app_secret: str, body: bytes) -> str:
    return hashlib.md5(
        app_key.encode() + body + app_secret.encode(), usedforsecurity=False
    ).hexdigest()


def verify_event(app_key: str, app_secret: str, body: bytes, given: str | None) -> bool:
    """Constant-time, case-insensitive check of the `event-sign` header over the body as sent."""
    if not given or not app_secret:
        return False
    expected = event_sign(app_key, app_secret, body).encode()
    return hmac.compare_digest(expected, given.strip().lower().encode(errors="replace"))

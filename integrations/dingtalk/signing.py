"""DingTalk's two HMAC-SHA256 signatures: custom robot sends (加签) and app robot HTTP callbacks.

Both sign `f"{timestamp_ms}\\n{secret}"` with the secret as key; the robot send puts the
url-encoded base64 into the query string, the callback sends it bare in a `sign` header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

TIMESTAMP_HEADER = "timestamp"
SIGN_HEADER = "sign"


def sign(secret: str, timestamp_ms: int | str) -> str:
    """base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def robot_query(secret: str, timestamp_ms: int) -> str:
    """The `timestamp=…&sign=…` a custom robot send appends to its webhook URL."""
    return f"timestamp={timestamp_ms}&sign={quote_plus(sign(secret, timestamp_ms))}"


def verify(
    secret: str, timestamp: str | None, signature: str | None, *, now_ms: int, max_skew_s: int
) -> str | None:
    """None when a callback's `timestamp`/`sign` headers are valid, else the reason."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGN_HEADER} header"
    try:
        ts = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be unix milliseconds"
    if abs(now_ms - ts) > max_skew_s * 1000:
        return f"{TIMESTAMP_HEADER} is more than {max_skew_s} s away from the server clock"
    given = signature.encode(errors="replace")
    if not secret or not hmac.compare_digest(sign(secret, ts).encode(), given):
        return "sign does not match"
    return None

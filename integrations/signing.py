"""refundops' own HMAC scheme, used by the ingest API and every webhook refundops sends.

`X-Refundops-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` with
`X-Refundops-Timestamp: <unix seconds>`, accepted within ±`max_skew_s`. A request without
a body (GET) signs its method and target instead, so that one captured signature reads
one resource: `"<timestamp>.<METHOD> <path>[?<query>].<raw body>"`, the path and query
exactly as sent on the request line (percent-encoded), e.g. `1700000000.GET /api/v1/cases/R12.`
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Refundops-Timestamp"
SIGNATURE_HEADER = "X-Refundops-Signature"


def sign(secret: str, timestamp: int | str, body: bytes, *, target: str = "") -> str:
    """The signature of a POST body, or with `target` ("GET /api/v1/cases/R12") of a request
    that has none."""
    message = f"{timestamp}.".encode()
    if target:
        message += f"{target}.".encode(errors="replace")  # a request line is any bytes
    mac = hmac.new(secret.encode(), message + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes, *, target: str = "") -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body, target=target),
    }


def signed_get_headers(secret: str, timestamp: int, path: str) -> dict[str, str]:
    """Headers for `GET path` (path and query exactly as they go on the request line)."""
    return signed_headers(secret, timestamp, b"", target=f"GET {path}")


def verify_headers(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    max_skew_s: int,
    target: str = "",
) -> str | None:
    """`verify` with the timestamp and signature taken from request headers."""
    return verify(
        secret,
        headers.get(TIMESTAMP_HEADER),
        headers.get(SIGNATURE_HEADER),
        body,
        now=now,
        max_skew_s=max_skew_s,
        target=target,
    )


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    max_skew_s: int,
    target: str = "",
) -> str | None:
    """None when valid, else the reason (for the 401 message; never echoes the secret)."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    try:
        ts = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be unix seconds"
    if abs(now - ts) > max_skew_s:
        return f"{TIMESTAMP_HEADER} is more than {max_skew_s} s away from the server clock"
    given = signature.strip().encode(errors="replace")  # compare_digest refuses non-ASCII str
    if not secret or not hmac.compare_digest(sign(secret, ts, body, target=target).encode(), given):
        return "signature does not match"
    return None

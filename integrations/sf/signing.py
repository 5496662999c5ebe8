"""丰桥 `msgDigest = Base64(MD5_raw(URLEncoder.encode(msgData + timestamp + checkword, "UTF-8")))`.

The encoding is Java's `URLEncoder` (the platform and its official Java SDK are Java): letters,
digits and `.-*_` stay, a space becomes `+`, everything else is `%XX` upper-case over UTF-8.
The official Python demo's `quote_plus` differs only on `*` and `~`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def java_urlencode(text: str) -> str:
    return quote_plus(text, safe="*").replace("~", "%7E")


def digest(msg_data: str, timestamp: str, checkword: str) -> str:
    encoded = java_urlencode(msg_data + timestamp + checkword)
    raw = hashlib.md5(encoded.encode("utf-8"), usedforsecurity=False).digest()
    return base64.b64encode(raw).decode("ascii")


def verify(msg_data: str, timestamp: str, checkword: str, given: str) -> bool:
    expected = digest(msg_data, timestamp, checkword).encode()
    return bool(checkword) and hmac.compare_digest(expected, given.strip().encode(errors="replace"))


def push_token_ok(given: str, token: str) -> bool:
    """The route push's only check: the secret token in its URL (the push itself is unsigned)."""
    return bool(token) and hmac.compare_digest(token.encode(), given.encode(errors="replace"))

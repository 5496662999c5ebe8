"""快递100 signatures, all upper-case hex MD5 over text joined without separators:
the push (and other salted callbacks) `sign = MD5(param + salt)`; the label/order API
(`interceptOrder`) `sign = MD5(param + t + key + secret)` (java-demo SignUtils.printSign)."""

from __future__ import annotations

import hashlib
import hmac


def sign(param: str, salt: str) -> str:
    return _md5(param + salt)


def verify(param: str, salt: str, signature: str) -> bool:
    """Constant-time check; the vendor documents upper case, lower case is accepted too."""
    given = signature.strip().upper().encode(errors="replace")  # non-ASCII str cannot be compared
    return bool(salt) and hmac.compare_digest(sign(param, salt).encode(), given)


def order_sign(param: str, t: str, key: str, secret: str) -> str:
    """The label/order API's `sign` over the exact `param` text sent and `t` (ms)."""
    return _md5(param + t + key + secret)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()

"""快递100 push signature: `sign = MD5(param + salt)`, upper-case hex, over the raw `param` text
and the salt given in the subscription (`parameters.salt`)."""

from __future__ import annotations

import hashlib
import hmac


def sign(param: str, salt: str) -> str:
    return hashlib.md5((param + salt).encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def verify(param: str, salt: str, signature: str) -> bool:
    """Constant-time check; the vendor documents upper case, lower case is accepted too."""
    given = signature.strip().upper().encode(errors="replace")  # non-ASCII str cannot be compared
    return bool(salt) and hmac.compare_digest(sign(param, salt).encode(), given)

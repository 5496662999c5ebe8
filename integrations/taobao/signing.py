"""TOP request signatures (open.taobao.com docId=101617) and the TMC CONNECT signature.

TOP: sort every parameter but `sign` (and file fields) by name, join `name + value`, then
md5 with the secret on both ends, or HMAC-MD5 / HMAC-SHA256 keyed by the secret; upper hex.
TMC (tmc.js lib/consumer.js `sign`): md5(secret + "app_key"… + "group_name"… + "timestamp"… +
secret), upper hex.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

SignMethod = Literal["md5", "hmac", "hmac-sha256"]


def canonical(params: Mapping[str, str]) -> str:
    return "".join(k + params[k] for k in sorted(params) if k != "sign")


def top_sign(params: Mapping[str, str], secret: str, method: SignMethod) -> str:
    text = canonical(params).encode()
    key = secret.encode()
    if method == "md5":
        return hashlib.md5(key + text + key).hexdigest().upper()
    if method == "hmac":
        return hmac.new(key, text, hashlib.md5).hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(key, text, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown sign_method {method!r}")


def tmc_sign(app_key: str, group_name: str, timestamp: str, secret: str) -> str:
    text = f"{secret}app_key{app_key}group_name{group_name}timestamp{timestamp}{secret}"
    return hashlib.md5(text.encode()).hexdigest().upper()

"""聚水潭 open-platform signature (openweb docId=70 签名规则).

`sign = lower(hex(md5(app_secret + k1v1 + k2v2 + …)))` over the form parameters sorted by
name, `sign` itself and empty values left out. The secret is a prefix only (unlike TOP's
secret…secret sandwich).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def canonical(params: Mapping[str, str]) -> str:
    return "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def sign(app_secret: str, params: Mapping[str, str]) -> str:
    text = app_secret + canonical(params)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def signed(app_secret: str, params: Mapping[str, str]) -> dict[str, str]:
    return {**params, "sign": sign(app_secret, params)}

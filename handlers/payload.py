"""JSON from outside: parsed with bounded nesting, and checked for text storage cannot hold.

Python's parser recurses once per level and raises RecursionError on deep nesting; the
whole of an inbound event is stored as JSON and its strings in text columns, where
PostgreSQL refuses U+0000 and UTF-8 cannot carry a lone surrogate (`"\\ud800"` decodes
to one). Both are the sender's fault, so both become a 400 naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 32
# U+0000 and lone surrogates: nothing else that JSON can carry is refused by storage.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains U+0000 or a lone surrogate, which cannot be stored"
NOT_FINITE_MESSAGE = "is a number too large to store"
TOO_DEEP_MESSAGE = f"too deeply nested (more than {MAX_DEPTH} levels)"
# In JSON text: an escape that decodes to U+0000 or a surrogate, UTF-8 bytes of a surrogate
# (the parser lets them through), or a number with an exponent of three digits or more or
# with 300 digits (either may overflow to infinity).
SUSPECT = re.compile(
    rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]|[:,\[]\s*-?\d+(?:\.\d+)?[eE][+-]?\d{3}|\d{300}"
)


class PayloadError(ValueError):
    """A body we refuse; `errors` is `[{"field", "message"}]`, the shape of every 400."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def loads(raw: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing bodies nested deeper than `max_depth` (PayloadError, never a crash)."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise PayloadError([{"field": "body", "message": TOO_DEEP_MESSAGE}]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError([{"field": "body", "message": f"not valid JSON ({exc})"}]) from None
    if _containers(raw) > max_depth and not clean(value, max_depth, strings=False):
        too_deep = deeper_than(value, max_depth)
        if too_deep is not None:
            raise PayloadError([{"field": too_deep or "body", "message": TOO_DEEP_MESSAGE}])
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def plainly_storable(raw: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> bool:
    """True when the JSON text `raw` cannot hold anything `clean` refuses: too few brackets to
    nest too deep, no `\\u0000` or surrogate escape (nor raw surrogate bytes), no exponent
    large enough to overflow. A quick look at the text in place of a walk; False only means
    "look closer"."""
    text = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    return _containers(text) <= max_depth and SUSPECT.search(text) is None


def _containers(raw: str | bytes | bytearray) -> int:
    """How many objects and arrays the JSON text opens at most (brackets in strings count)."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def clean(value: Any, max_depth: int = MAX_DEPTH, *, strings: bool = True) -> bool:
    """True when `value` is within `max_depth` and (with `strings`) every key, string and
    number in it can be stored: one quick pass that names nothing, for the common case;
    `deeper_than` and `unstorable` say where, when it is False."""
    if not isinstance(value, dict | list):
        return not strings or _storable(value)
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(item, dict):
            if strings and any(UNSTORABLE.search(key) for key in item):
                return False
            children: Iterable[Any] = item.values()
        else:
            children = item
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif strings and not _storable(child):
                return False
    return True


def _storable(item: Any) -> bool:
    if isinstance(item, str):
        return UNSTORABLE.search(item) is None
    return not isinstance(item, float) or math.isfinite(item)


def deeper_than(value: Any, max_depth: int = MAX_DEPTH, prefix: str = "") -> str | None:
    """The path of the first container nested deeper than `max_depth`, else None."""
    stack: list[tuple[Any, str, int]] = [(value, prefix, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return path.rstrip(".")
            stack.extend((child, name, depth + 1) for child, name in _children(item, path))
    return None


def unstorable(value: Any, prefix: str = "") -> list[dict[str, str]]:
    """A field error for each key, string or number, however deep, that storage cannot hold
    (`1e999` parses as infinity, which JSON columns refuse)."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                errors.append({"field": path.rstrip(".") or "body", "message": UNSTORABLE_MESSAGE})
        elif isinstance(item, float) and not math.isfinite(item):
            errors.append({"field": path.rstrip(".") or "body", "message": NOT_FINITE_MESSAGE})
        elif isinstance(item, dict | list):
            if isinstance(item, dict):
                errors.extend(
                    {"field": f"{path}{printable(key)}", "message": f"key {UNSTORABLE_MESSAGE}"}
                    for key in item
                    if UNSTORABLE.search(key)
                )
            stack.extend(_children(item, path))
    return sorted(errors, key=lambda e: e["field"])


def printable(text: str) -> str:
    """`text` with what storage cannot hold written as `\\uXXXX`, for naming a field."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _children(item: dict[str, Any] | list[Any], path: str) -> list[tuple[Any, str]]:
    if isinstance(item, dict):
        return [(child, f"{path}{printable(key)}.") for key, child in item.items()]
    base = path.rstrip(".")
    return [(child, f"{base}[{i}].") for i, child in enumerate(item)]

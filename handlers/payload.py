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
from typing import Any

MAX_DEPTH = 32
# U+0000 and lone surrogates: nothing else that JSON can carry is refused by storage.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains U+0000 or a lone surrogate, which cannot be stored"
NOT_FINITE_MESSAGE = "is a number too large to store"
TOO_DEEP_MESSAGE = f"too deeply nested (more than {MAX_DEPTH} levels)"


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
    too_deep = deeper_than(value, max_depth)
    if too_deep is not None:
        raise PayloadError([{"field": too_deep or "body", "message": TOO_DEEP_MESSAGE}])
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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

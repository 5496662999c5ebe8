"""What a case is known by besides its handle and ids — the tracking numbers of its parcel and
return, its buyer's nick — read from its `data`, normalised as people type them. The case
repository keeps these beside each case (`case_keys`), so 查 finds them by index.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

TRACKING = "tracking"
NICK = "nick"
MAX_KEY = 128


def normalize(kind: str, text: str) -> str:
    """A value as it is kept and looked up: full-width folded, trimmed; a tracking number
    without spaces, upper case; a nick lower case."""
    words = unicodedata.normalize("NFKC", text).split()
    plain = "".join(words).upper() if kind == TRACKING else " ".join(words).lower()
    return plain[:MAX_KEY]


def search_keys(data: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """(kind, value) for each tracking number and nick in a case's `data`, whatever its kind:
    an intercept's or anomaly's parcel, a refund's parcel, its return parcel and its buyer."""
    found: set[tuple[str, str]] = set()
    refund = _object(data.get("refund"))
    tracking = [
        data.get("tracking_no"),
        _object(refund.get("shipping")).get("tracking_no"),
        _object(refund.get("return_tracking")).get("tracking_no"),
    ]
    found |= {(TRACKING, normalize(TRACKING, t)) for t in tracking if isinstance(t, str)}
    nick = _object(refund.get("buyer")).get("nick")
    if isinstance(nick, str):
        found.add((NICK, normalize(NICK, nick)))
    return frozenset((kind, value) for kind, value in found if value)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}

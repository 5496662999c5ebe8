"""Money conversion and the v1 HMAC signature."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from handlers.money import format_fen, yuan_to_fen
from integrations.signing import sign, verify


@pytest.mark.parametrize(
    ("value", "fen"), [("128.00", 12800), ("0.01", 1), ("7", 700), (5, 500), ("1e2", 10000)]
)
def test_yuan_to_fen(value: str | int, fen: int) -> None:
    assert yuan_to_fen(value) == fen


@pytest.mark.parametrize("value", ["1.001", "-1", "abc", "NaN", "Infinity", ""])
def test_yuan_to_fen_refuses(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        yuan_to_fen(value)


def test_format_fen() -> None:
    assert format_fen(123456789) == "¥1,234,567.89"


def test_sign_matches_the_documented_scheme() -> None:
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, b'{"a":1}') == f"v1={expected}"


def test_verify_window_and_mismatch() -> None:
    body = b"{}"
    good = sign("k", 1000, body)
    assert verify("k", "1000", good, body, now=1000 + 300, max_skew_s=300) is None
    assert "300 s" in (verify("k", "1000", good, body, now=1301, max_skew_s=300) or "")
    assert verify("k", "1000", good, b"{ }", now=1000, max_skew_s=300) == "signature does not match"
    assert (
        verify("other", "1000", good, body, now=1000, max_skew_s=300) == "signature does not match"
    )
    assert "missing" in (verify("k", None, good, body, now=1000, max_skew_s=300) or "")
    assert "unix seconds" in (verify("k", "yesterday", good, body, now=1000, max_skew_s=300) or "")
    assert verify("", "1000", sign("", 1000, body), body, now=1000, max_skew_s=300) is not None

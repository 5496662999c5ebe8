"""丰桥 msgDigest: the §4 vector as it stands, and Java URLEncoder's treatment of `* ~` and space."""

from __future__ import annotations

import base64
import hashlib

from integrations.sf.signing import digest, java_urlencode, push_token_ok, verify

MSG = (
    '{"waybillNo":"SF1234567890123","serviceCode":"2","role":"1","payMode":"4",'
    '"monthlyCardNo":"7551234567"}'
)


def test_digest_matches_the_vector() -> None:
    assert digest(MSG, "1714525200000", "demo_checkword") == "x/z5qNrLVySh9y4HG5qbtA=="


def test_verify_refuses_another_checkword() -> None:
    assert verify(MSG, "1714525200000", "demo_checkword", "x/z5qNrLVySh9y4HG5qbtA==")
    assert not verify(MSG, "1714525200000", "other", "x/z5qNrLVySh9y4HG5qbtA==")


def test_java_urlencode_keeps_star_and_encodes_tilde_and_space() -> None:
    assert java_urlencode("a b*c~d!'()中") == "a+b*c%7Ed%21%27%28%29%E4%B8%AD"


def test_digest_over_text_with_a_space_uses_plus() -> None:
    raw = hashlib.md5(b"a+b1k", usedforsecurity=False).digest()
    assert digest("a b", "1", "k") == base64.b64encode(raw).decode()


def test_push_token_needs_a_configured_token() -> None:
    assert push_token_ok("t0k", "t0k")
    assert not push_token_ok("", "")
    assert not push_token_ok("x", "t0k")

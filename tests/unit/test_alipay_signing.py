"""RSA2 as Alipay specifies it, checked against textbook RSA on a key pair made here."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.payout import signing
from integrations.payout.client import payee_info, response_node
from tests.support.payout import app_key

# DER prefix of DigestInfo{sha256} (RFC 8017 §9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def textbook_rsa2(key: rsa.RSAPrivateKey, message: str) -> str:
    """EMSA-PKCS1-v1_5 with SHA-256, then m^d mod n: RSA2 without any library."""
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    size = (n.bit_length() + 7) // 8
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message.encode()).digest()
    encoded = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    signature = pow(int.from_bytes(encoded, "big"), d, n).to_bytes(size, "big")
    return base64.b64encode(signature).decode()


def test_canonical_string_sorts_and_drops_sign_and_empty_values() -> None:
    params = {
        "timestamp": "2026-11-23 10:00:00",
        "method": "alipay.fund.trans.uni.transfer",
        "app_id": "2021004100000001",
        "sign_type": "RSA2",
        "sign": "left-out",
        "notify_url": "",
        "charset": "utf-8",
        "version": "1.0",
        "biz_content": '{"out_biz_no":"PO1","trans_amount":"5.00"}',
    }
    assert signing.canonical(params) == (
        'app_id=2021004100000001&biz_content={"out_biz_no":"PO1","trans_amount":"5.00"}'
        "&charset=utf-8&method=alipay.fund.trans.uni.transfer&sign_type=RSA2"
        "&timestamp=2026-11-23 10:00:00&version=1.0"
    )


def test_sign_is_sha256_with_rsa_pkcs1_v15() -> None:
    key = app_key()
    message = 'app_id=2021004100000001&biz_content={"标题":"活动返现"}&charset=utf-8'
    assert signing.sign(key, message) == textbook_rsa2(key, message)
    assert signing.verify(key.public_key(), message, signing.sign(key, message))


def test_verify_refuses_tampering_other_keys_and_garbage() -> None:
    key = app_key()
    signature = signing.sign(key, "a=1&b=2")
    assert not signing.verify(key.public_key(), "a=1&b=3", signature)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert not signing.verify(other.public_key(), "a=1&b=2", signature)
    assert not signing.verify(key.public_key(), "a=1&b=2", "not base64!")
    assert not signing.verify(key.public_key(), "a=1&b=2", "")


def test_keys_load_as_pem_or_bare_base64_pkcs8_and_pkcs1() -> None:
    key = app_key()
    numbers = key.private_numbers()
    forms = [
        key.private_bytes(fmt_enc, fmt, serialization.NoEncryption())
        for fmt_enc in (serialization.Encoding.PEM, serialization.Encoding.DER)
        for fmt in (
            serialization.PrivateFormat.PKCS8,
            serialization.PrivateFormat.TraditionalOpenSSL,
        )
    ]
    texts = [f.decode() if f.startswith(b"-----") else base64.b64encode(f).decode() for f in forms]
    for text in texts:
        assert signing.load_private_key(text).private_numbers() == numbers
    public = signing.bare_public_key(key.public_key())
    assert signing.load_public_key(public).public_numbers() == numbers.public_numbers
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signing.load_public_key(pem.decode()).public_numbers() == numbers.public_numbers
    with pytest.raises(signing.BadKeyError):
        signing.load_private_key("MIIBnotakey")
    with pytest.raises(signing.BadKeyError):
        signing.load_public_key("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----")


def test_response_node_is_the_exact_signed_text() -> None:
    inner = '{"code":"10000","msg":"Success","status":"SUCCESS","detail":{"a":[1,2]}}'
    text = f'{{"alipay_fund_trans_uni_transfer_response": {inner},"sign":"c2ln"}}'
    assert response_node(text, "alipay.fund.trans.uni.transfer") == (inner, "c2ln")
    first = f'{{"sign":"c2ln","alipay_fund_trans_common_query_response":{inner}}}'
    assert response_node(first, "alipay.fund.trans.common.query") == (inner, "c2ln")
    error = '{"error_response":{"code":"40002","sub_code":"isv.invalid-app-id"}}'
    assert response_node(error, "alipay.fund.trans.uni.transfer") == (
        '{"code":"40002","sub_code":"isv.invalid-app-id"}',
        "",
    )
    assert response_node("<html>502</html>", "alipay.fund.trans.uni.transfer") is None
    assert response_node(json.dumps([1]), "alipay.fund.trans.uni.transfer") is None


def test_payee_identity_type_follows_the_account() -> None:
    assert payee_info("2088102122524333", "").identity_type == "ALIPAY_USER_ID"
    assert payee_info("2088102122524333", "").name is None
    phone = payee_info("13800138000", "王小明")
    assert (phone.identity_type, phone.name) == ("ALIPAY_LOGON_ID", "王小明")
    assert payee_info("a@b.cn", "张三").identity_type == "ALIPAY_LOGON_ID"

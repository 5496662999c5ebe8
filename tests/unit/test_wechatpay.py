"""WeChat Pay transfer-bills: what each bill state means to the payout flow, and bill numbers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from handlers.ports import TransferStatus
from integrations.wechatpay.client import out_bill_no, result_of
from integrations.wechatpay.keys import load_certificates, load_keys, verify
from integrations.wechatpay.models import Bill
from integrations.wechatpay.settings import WechatPaySettings
from tests.support.wechatpay import pem


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("SUCCESS", TransferStatus.SUCCESS),
        ("FAIL", TransferStatus.FAILED),
        ("CANCELLED", TransferStatus.FAILED),
        ("WAIT_USER_CONFIRM", TransferStatus.WAITING_BUYER),
        ("ACCEPTED", TransferStatus.PROCESSING),
        ("PROCESSING", TransferStatus.PROCESSING),
        ("TRANSFERING", TransferStatus.PROCESSING),
        ("CANCELING", TransferStatus.PROCESSING),
        ("SOMETHING_NEW", TransferStatus.UNKNOWN),
    ],
)
def test_result_of_maps_every_documented_state(state: str, status: TransferStatus) -> None:
    result = result_of(Bill(out_bill_no="PO1", transfer_bill_no="1330", state=state))
    assert (result.status, result.provider_status, result.reference) == (status, state, "1330")


def test_result_of_carries_the_confirm_package_and_the_fail_reason() -> None:
    waiting = result_of(Bill(out_bill_no="PO1", state="WAIT_USER_CONFIRM", package_info="pkg"))
    assert waiting.confirm == "pkg"
    failed = result_of(Bill(out_bill_no="PO1", state="FAIL", fail_reason="PAYEE_ACCOUNT_ABNORMAL"))
    assert failed.detail == "PAYEE_ACCOUNT_ABNORMAL"
    cancelled = result_of(Bill(out_bill_no="PO1", state="CANCELLED"))
    assert cancelled.detail


def test_out_bill_no_keeps_plain_numbers_and_digests_the_rest() -> None:
    assert out_bill_no("PO26112300001") == "PO26112300001"
    derived = out_bill_no("PO26112300001_2")
    assert derived == out_bill_no("PO26112300001_2")
    assert derived.isalnum()
    assert len(derived) == 32
    assert out_bill_no("x" * 33) != "x" * 32


def test_platform_certificates_verify_by_serial(tmp_path: Path) -> None:
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform.public_key())
        .serial_number(0x7132D72A03E93CDDF8C03BBD1F37EEDF)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(platform, hashes.SHA256())
    )
    (tmp_path / "platform.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = WechatPaySettings(
        private_key=SecretStr(pem(merchant)), platform_cert_dir=str(tmp_path)
    )
    keys = load_keys(settings, now)
    assert keys.encrypt_serial == "7132D72A03E93CDDF8C03BBD1F37EEDF"
    body = '{"state":"SUCCESS"}'
    signature = platform.sign(
        f"1795399200\nN1\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    headers = {
        "Wechatpay-Timestamp": "1795399200",
        "Wechatpay-Nonce": "N1",
        "Wechatpay-Signature": base64.b64encode(signature).decode(),
        "Wechatpay-Serial": "7132D72A03E93CDDF8C03BBD1F37EEDF",
    }
    assert verify(keys, headers, body, now=now, max_skew_s=300) is None
    assert verify(keys, headers, body + " ", now=now, max_skew_s=300) == "bad signature"
    assert load_certificates(str(tmp_path), now + timedelta(days=400)) == {}

"""The keys a WeChat Pay merchant holds, loaded and used through `wechatpayv3.utils`: the
merchant key signs requests; WeChat Pay's public key (or platform certificates, by serial)
verifies answers and notifications and encrypts `user_name`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import utils as wxpay

from integrations.wechatpay.settings import WechatPaySettings

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


class BadKeyError(ValueError):
    """A key or certificate in the settings cannot be read."""


@dataclass(frozen=True)
class WechatPayKeys:
    private_key: rsa.RSAPrivateKey
    # `Wechatpay-Serial` → the key that signs with it (the public key id, or a certificate's
    # serial in upper-case hex).
    platform: Mapping[str, rsa.RSAPublicKey]
    # The serial sent as `Wechatpay-Serial`, whose key encrypts sensitive fields.
    encrypt_serial: str

    def encrypt(self, text: str) -> str:
        result: str = wxpay.rsa_encrypt(text, self.platform[self.encrypt_serial])
        return result

    def sign(self, message: str) -> str:
        result: str = wxpay.rsa_sign(self.private_key, message)
        return result


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = wxpay.load_private_key(pem)
    except Exception as exc:  # the library raises a bare Exception for any unreadable key
        raise BadKeyError("not an RSA private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadKeyError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = wxpay.load_public_key(pem)
    except Exception as exc:
        raise BadKeyError("not an RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadKeyError("not an RSA public key")
    return key


def load_certificates(directory: str, now: datetime) -> dict[str, rsa.RSAPublicKey]:
    """The platform certificates in `directory` valid at `now`, by serial (upper-case hex)."""
    found: dict[str, tuple[datetime, rsa.RSAPublicKey]] = {}
    for path in sorted(Path(directory).glob("*.pem")):
        cert = wxpay.load_certificate(path.read_text(encoding="utf-8"))
        if cert is None or not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            continue
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            found[f"{cert.serial_number:X}"] = (cert.not_valid_after_utc, key)
    return {serial: key for serial, (_, key) in sorted(found.items(), key=lambda kv: kv[1][0])}


def load_keys(settings: WechatPaySettings, now: datetime) -> WechatPayKeys:
    private_key = load_private_key(settings.private_key.get_secret_value())
    platform: dict[str, rsa.RSAPublicKey] = {}
    if settings.platform_cert_dir:
        platform.update(load_certificates(settings.platform_cert_dir, now))
    encrypt_serial = next(reversed(platform), "")
    if settings.public_key and settings.public_key_id:
        platform[settings.public_key_id] = load_public_key(settings.public_key)
        encrypt_serial = settings.public_key_id
    if not platform:
        raise BadKeyError("no WeChat Pay public key or valid platform certificate")
    return WechatPayKeys(private_key, platform, encrypt_serial)


def verify(
    keys: WechatPayKeys,
    headers: Mapping[str, str],
    body: str,
    *,
    now: datetime,
    max_skew_s: float,
) -> str | None:
    """Why an answer or notification is not WeChat Pay's own (None: it is)."""
    signature = headers.get("Wechatpay-Signature", "")
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    serial = headers.get("Wechatpay-Serial", "")
    kind = headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE)
    if not (signature and timestamp and nonce and serial):
        return "not signed"
    if kind != SIGNATURE_TYPE:
        return f"signature type {kind}"
    key = keys.platform.get(serial)
    if key is None:
        return f"signed with unknown serial {serial}"
    try:
        sent = int(timestamp)
        base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        return "malformed signature headers"
    if abs(now.timestamp() - sent) > max_skew_s:
        return f"timestamp {timestamp} outside ±{max_skew_s:.0f}s"
    if not wxpay.rsa_verify(timestamp, nonce, body, signature, key):
        return "bad signature"
    return None

"""Alipay RSA2: SHA256withRSA (PKCS#1 v1.5) over the sorted `key=value&…` string, base64.

Requests sign every non-empty parameter except `sign` (docs: 开放平台 → 签名 → 自行实现签名);
answers sign the raw JSON text of the `<method>_response` object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class BadKeyError(ValueError):
    """A key in the settings cannot be read."""


def canonical(params: Mapping[str, str]) -> str:
    """The string Alipay signs: parameters sorted by name, `sign` and empty values left out."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def sign_params(key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> dict[str, str]:
    return {**params, "sign": sign(key, canonical(params))}


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """A PEM key, or the bare base64 (PKCS#8 or PKCS#1) that Alipay's key tool prints."""
    try:
        data = text.strip().encode("ascii")
        if data.startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode(data), password=None)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise BadKeyError(f"not an RSA private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadKeyError("not an RSA private key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A PEM public key, or the bare base64 shown as 支付宝公钥."""
    try:
        data = text.strip().encode("ascii")
        if data.startswith(b"-----"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(base64.b64decode(data))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise BadKeyError(f"not an RSA public key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadKeyError("not an RSA public key")
    return key


def bare_public_key(key: rsa.RSAPublicKey) -> str:
    """The public key as the bare base64 the Alipay console shows and our settings take."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def bare_private_key(key: rsa.RSAPrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode("ascii")

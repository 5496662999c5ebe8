"""WeChat Pay test helpers: the merchant's key pair (made once per run, never a fixed secret),
an APIv3 key, settings pointing at a fake, and the fake itself."""

from __future__ import annotations

import secrets
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from handlers.clock import FakeClock
from integrations.wechatpay.fake import FakeWechatPay
from integrations.wechatpay.settings import WechatPaySettings

MCHID = "1900000109"
APPID = "wxf636efh567hg4356"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


@cache
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def platform_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def apiv3_key() -> str:
    return secrets.token_hex(16)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def make_fake(clock: FakeClock) -> FakeWechatPay:
    return FakeWechatPay(
        mchid=MCHID,
        appid=APPID,
        merchant_public_key=merchant_key().public_key(),
        merchant_serial_no=SERIAL,
        apiv3_key=apiv3_key(),
        platform_key=platform_key(),
        now=clock.now,
    )


def settings_for(fake: FakeWechatPay, url: str, **overrides: object) -> WechatPaySettings:
    values: dict[str, object] = {
        "mchid": MCHID,
        "appid": APPID,
        "private_key": SecretStr(pem(merchant_key())),
        "cert_serial_no": SERIAL,
        "apiv3_key": SecretStr(apiv3_key()),
        "public_key": fake.public_key_pem,
        "public_key_id": fake.public_key_id,
        "api_base": url,
        "notify_url": "https://refundops.example.com/wechatpay/transfer",
        "timeout_s": 0.3,
    }
    return WechatPaySettings.model_validate(values | overrides)

"""Payout test helpers: Alipay key pairs (made once per run), settings, the fake, events."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from handlers.clock import FakeClock
from integrations.payout.fake import FakeAlipay
from integrations.payout.signing import bare_private_key, bare_public_key
from tests.support.app import make_event

APP_ID = "2021004100000001"
GROUPS = [
    {"id": "aftersales", "name": "售后一组", "channel": "sandbox", "kinds": ["refund"]},
    {"id": "finance", "name": "财务群", "channel": "sandbox", "kinds": ["payout"]},
    {"id": "ops", "name": "管理群", "channel": "sandbox"},
]


@cache
def app_key() -> rsa.RSAPrivateKey:
    """The merchant app's key pair (its public half is uploaded to Alipay)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def alipay_key() -> rsa.RSAPrivateKey:
    """Alipay's own key pair; its public half is the 支付宝公钥 in our settings."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_alipay(clock: FakeClock | None = None) -> FakeAlipay:
    fake = FakeAlipay(APP_ID, app_key().public_key(), alipay_key())
    if clock is not None:
        fake.now = clock.now
    return fake


def alipay_settings(gateway: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "alipay",
        "alipay_app_id": APP_ID,
        "alipay_private_key": bare_private_key(app_key()),
        "alipay_public_key": bare_public_key(alipay_key().public_key()),
        "alipay_gateway": gateway,
        "alipay_timeout_s": 0.5,
        **extra,
    }


def make_payout(**overrides: Any) -> dict[str, Any]:
    """A payout.requested envelope; `data_*` keys override fields of `data`."""
    data: dict[str, Any] = {
        "payout_id": f"PO{uuid.uuid4().hex[:12].upper()}",
        "kind": "cashback",
        "order_id": "T88001",
        "amount": "128.00",
        "payee": {"name": "王小明", "account": "13800138000"},
        "reason": "活动返现",
        "requested_by": "agent1",
    }
    return make_event("payout.requested", data, **overrides)

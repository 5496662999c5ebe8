"""`[payout]` in check-config: what the Alipay provider needs, named the way it is set."""

from __future__ import annotations

from bot.config_check import problems
from bot.settings import Settings
from integrations.payout.signing import bare_public_key
from tests.support.payout import alipay_key, alipay_settings


def settings(**payout: object) -> Settings:
    return Settings(
        demo=True,
        ingest={"secret": "long-random-0123456789"},
        groups=[{"id": "finance", "channel": "sandbox"}],
        staff=[{"id": "admin1", "roles": ["admin"]}],
        payout=payout,
    )


def test_manual_needs_nothing_and_a_complete_alipay_passes() -> None:
    assert problems(settings()) == []
    assert problems(settings(**alipay_settings("https://openapi.alipay.com/gateway.do"))) == []


def test_alipay_names_every_missing_or_broken_key() -> None:
    found = "\n".join(problems(settings(provider="alipay", alipay_gateway="")))
    for expected in (
        "payout.alipay_app_id is empty",
        "missing secret payout.alipay_private_key (set REFUNDOPS_PAYOUT__ALIPAY_PRIVATE_KEY)",
        "payout.alipay_public_key is empty",
        "payout.alipay_gateway is empty",
    ):
        assert expected in found, expected
    broken = problems(
        settings(
            provider="alipay",
            alipay_app_id="2021",
            alipay_private_key=bare_public_key(alipay_key().public_key()),
            alipay_public_key="bm90IGEga2V5",
        )
    )
    assert any(p.startswith("payout.alipay_private_key: not an RSA private key") for p in broken)
    assert any(p.startswith("payout.alipay_public_key: not an RSA public key") for p in broken)

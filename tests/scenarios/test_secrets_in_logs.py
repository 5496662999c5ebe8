"""No secret ever shows: not in a log record (DEBUG, failures and dead letters included), not
in /metrics, not in check-config's output, not in the repr of Settings."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest

from bot.cli import main as cli
from bot.settings import Settings, secret_paths
from handlers.clock import FakeClock
from integrations.carrier.fake import FakeCarrier
from integrations.commerce.fake import FakeCommerce
from integrations.payout.fake import FakeAlipay
from integrations.wecom.crypto import CallbackCrypto
from integrations.wecom.fake import FakeWeComAPI, WeComCallbacks
from tests.support.app import STAFF, Bot, BotFactory, make_refund, make_settings
from tests.support.dingtalk import running_fake
from tests.support.fakes import Served, serve
from tests.support.payout import alipay_settings, make_payout

INGEST = "ingest-Zq7!secret+/=0001"
WECOM_SECRET = "wecom-app-secret-Zq7x0002"
WECOM_TOKEN = "wecomTokenZq70003"
WECOM_AES = "Zq7aesKEYforTheAppCallbacks000000000000004"[:43].ljust(43, "A")
AIBOT_SECRET = "aibot-secret-Zq7x0005"
AIBOT_TOKEN = "aibotTokenZq70006"
AIBOT_AES = "Zq7aesKEYforTheAIbotHTTPmode0000000000007".ljust(43, "B")
DING_SECRET = "ding-app-secret-Zq7/+0008"
ROBOT_SECRET = "SECZq7robot0009abcdef1234567890abcdef1234567890abcdef1234567890"
COMMERCE = "commerce-secret-Zq7x0010"
CARRIER = "carrier-secret-Zq7x0011"
SALT = "kuaidi100-salt-Zq7x0012"
DASHBOARD = "dashboard-token-Zq7x0013"
CORP_ID = "wwZq7corp"
LOGGERS = ("bot", "commands", "handlers", "storage", "integrations")


def forms(secret: str) -> set[str]:
    """The secret as it could leak: itself, urlencoded, base64 (and for AES keys their bytes)."""
    found = {
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        base64.b64encode(secret.encode()).decode(),
    }
    return {f for f in found if len(f) >= 8}


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets for form in forms(s) if form in text]


@pytest.fixture
async def commerce(clock: FakeClock) -> AsyncIterator[Served[FakeCommerce]]:
    fake = FakeCommerce(secret=COMMERCE, fail_next=1000, now=lambda: clock.now().timestamp())
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/refundops")


@pytest.fixture
async def carrier(clock: FakeClock) -> AsyncIterator[Served[FakeCarrier]]:
    fake = FakeCarrier(
        secret=CARRIER, fail_next=1, fail_status=503, now=lambda: clock.now().timestamp()
    )
    async with serve(fake.app()) as base:
        yield Served(fake, base + "/intercepts")


@pytest.fixture
async def wecom(clock: FakeClock) -> AsyncIterator[FakeWeComAPI]:
    fake = FakeWeComAPI(
        corp_id=CORP_ID,
        secret=WECOM_SECRET,
        users={"wx_sup1"},
        now=lambda: clock.now().timestamp(),
    )
    async with serve(fake.app()) as fake.base_url:
        fake.fail_next = [-1, 45009, 40014, 60020]
        yield fake


async def post(bot: Bot, event: dict[str, object]) -> int:
    body = json.dumps(event).encode()
    resp = await bot.client.post("/api/v1/events", data=body, headers=bot.headers(body, INGEST))
    return resp.status


def every_secret(settings: Settings) -> list[str]:
    values: list[str] = []
    for path in secret_paths(Settings):
        if "[]" in path:
            continue
        node: object = settings
        for part in path.split("."):
            node = getattr(node, part)
        values.append(node.get_secret_value())  # type: ignore[attr-defined]
    values += [g.webhook_secret.get_secret_value() for g in settings.groups]
    return [v for v in values if v]


async def test_no_secret_in_logs_metrics_check_config_or_repr(
    make_bot: BotFactory,
    sqlite_url: str,
    clock: FakeClock,
    commerce: Served[FakeCommerce],
    carrier: Served[FakeCarrier],
    wecom: FakeWeComAPI,
    fake_alipay: Served[FakeAlipay],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_fake(clock) as ding:
        robot = ding.add_robot(ROBOT_SECRET)
        ding.throttle_next_robot = 1
        staff = [{**s, "wecom_userid": f"wx_{s['id']}"} for s in STAFF]
        settings = make_settings(
            sqlite_url,
            ingest={"secret": INGEST},
            staff=staff,
            groups=[
                {"id": "finance", "channel": "sandbox", "kinds": ["payout"]},
                {"id": "aftersales", "channel": "sandbox", "shops": ["flagship"]},
                {"id": "app", "channel": "wecom_app", "chat_id": "sup1", "shops": ["wecom-shop"]},
                {
                    "id": "ding",
                    "channel": "dingtalk_webhook",
                    "webhook_url": robot,
                    "webhook_secret": ROBOT_SECRET,
                    "shops": ["ding-shop"],
                },
                {"id": "ops", "channel": "sandbox"},
            ],
            wecom={
                "corp_id": CORP_ID,
                "agent_id": 1000002,
                "secret": WECOM_SECRET,
                "token": WECOM_TOKEN,
                "encoding_aes_key": WECOM_AES,
                "api_base": wecom.base_url,
                "aibot": {
                    "secret": AIBOT_SECRET,
                    "token": AIBOT_TOKEN,
                    "encoding_aes_key": AIBOT_AES,
                },
            },
            dingtalk={"app_key": "dingZq7", "app_secret": DING_SECRET, "oapi_base": ding.base_url},
            commerce={"mode": "webhook", "url": commerce[1], "secret": COMMERCE},
            carrier={
                "mode": "webhook",
                "url": carrier[1],
                "secret": CARRIER,
                "kuaidi100_salt": SALT,
            },
            payout=alipay_settings(fake_alipay.url, two_person_rule=False),
            dashboard={"token": DASHBOARD},
            dispatch={"backoff_base_s": 0.0001, "backoff_max_s": 0.0001, "max_attempts": 2},
        )
        secrets = every_secret(settings)
        assert len(secrets) == 14
        for name in LOGGERS:
            caplog.set_level(logging.DEBUG, logger=name)
        bot = await make_bot(settings)

        for shop, shipping in [
            ("flagship", {"status": "unshipped"}),
            ("flagship", {"status": "shipped", "carrier": "SF", "tracking_no": "SFZQ7001"}),
            ("wecom-shop", {"status": "delivered"}),
            ("ding-shop", {"status": "delivered"}),
        ]:
            assert await post(bot, make_refund(shop=shop, data_shipping=shipping)) == 202
        body = json.dumps(make_refund()).encode()
        bad = {
            "X-Refundops-Timestamp": str(int(clock.now().timestamp())),
            "X-Refundops-Signature": "v1=00",
        }
        assert (await bot.client.post("/api/v1/events", data=body, headers=bad)).status == 401
        assert await post(bot, make_payout(data_payout_id="POZQ7001")) == 202
        for step in range(8):
            await bot.drain()
            clock.advance(seconds=700 if step == 4 else 2)
        payout = next(c for c in await bot.cards("finance") if c["case_id"] == "POZQ7001")
        assert (await bot.say("sup1", f"通过 {payout['handle']}", group="finance"))["ok"]
        await bot.drain()
        assert (await bot.click("fin1", payout["id"], "paid", group="finance"))[0] == 200
        await bot.drain()

        app_crypto = WeComCallbacks(
            CallbackCrypto(WECOM_TOKEN, WECOM_AES, CORP_ID), CORP_ID, 1000002
        )
        query, xml = app_crypto.app_text("wx_sup1", "待办")
        assert (await bot.client.post(f"/wecom/callback?{query}", data=xml)).status == 200
        forged = urlencode({"msg_signature": "0" * 40, "timestamp": "1", "nonce": "n"})
        assert (await bot.client.post(f"/wecom/callback?{forged}", data=xml)).status == 401
        await bot.drain()
        dashboard = await bot.client.get(f"/dashboard?token={DASHBOARD}")
        assert dashboard.status == 200
        metrics = await (await bot.client.get("/metrics")).text()

    assert commerce[0].requests
    assert carrier[0].effects
    assert fake_alipay.fake.requests
    assert wecom.app_calls("/cgi-bin/gettoken")
    assert ding.robot_messages
    records = [r for r in caplog.records if r.name.split(".")[0] in LOGGERS]
    assert any("dead-lettered" in r.getMessage() for r in records)
    logged = caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    assert leaks(logged, secrets) == []
    assert leaks(metrics, secrets) == []
    assert leaks(repr(settings) + str(settings) + settings.model_dump_json(), secrets) == []

    config = tmp_path / "refundops.toml"
    config.write_text(
        '[[groups]]\nid = "ding"\nchannel = "dingtalk_webhook"\n'
        f'webhook_url = "{robot}"\n[wecom]\ncorp_id = "{CORP_ID}"\n',
        "utf-8",
    )
    for key, value in {
        "INGEST__SECRET": INGEST,
        "WECOM__SECRET": WECOM_SECRET,
        "WECOM__TOKEN": WECOM_TOKEN,
        "WECOM__ENCODING_AES_KEY": "too-short-" + WECOM_AES[:20],
        "DINGTALK__APP_SECRET": DING_SECRET,
        "COMMERCE__SECRET": COMMERCE,
        "CARRIER__SECRET": CARRIER,
        "DASHBOARD__TOKEN": DASHBOARD,
    }.items():
        monkeypatch.setenv(f"REFUNDOPS_{key}", value)
    capsys.readouterr()
    cli(["check-config", "--config", str(config)])
    inline = tmp_path / "inline.toml"
    inline.write_text(f'[ingest]\nsecret = "{INGEST}"\n', "utf-8")
    cli(["check-config", "--config", str(inline)])
    output = capsys.readouterr()
    assert output.err
    assert leaks(output.out + output.err, secrets) == []

"""The rule table as the team sees it: `refundops rules`, `refundops rules test --event FILE`
and `规则 R12` in chat, each saying which row decides and why the rows before it did not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.app import BotFactory, make_refund, make_settings

CONFIG = """
[[groups]]
id = "ops"
channel = "wecom_webhook"
webhook_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"

[[staff]]
id = "admin1"
roles = ["admin"]

[rules]
refund_before_stop_max = 100

[[rules.rows]]
name = "douyin-small"
platforms = ["抖音"]
max_amount = 30
actions = ["auto_approve"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "refundops.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_rules_prints_the_effective_table_defaults_included(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 rows from the config, then 6 defaults, then the fallback" in out
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert rows == [
        "1. douyin-small  ([[rules]] #1)",
        "2. price-diff-tolerance  (default)",
        "3. unshipped-auto  (default)",
        "4. unshipped-review  (default)",
        "5. shipped-intercept  (default)",
        "6. return-and-refund  (default)",
        "7. received-review  (default)",
        "8. default-review  (fallback)",
    ]
    assert "when platform 抖音 (douyin) · amount ≤ ¥30.00" in out
    assert "unshipped and above ¥100.00 (refund_before_stop_max)" in out


def test_rules_test_says_which_row_an_event_takes_and_why(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(make_refund(data_shipping={"status": "unshipped"}, data_amount="128.00")),
        encoding="utf-8",
    )
    assert main(["rules", "--config", str(config), "test", "--event", str(event)]) == 0
    out = capsys.readouterr().out
    assert (
        "✗ douyin-small ([[rules]] #1): platform 抖音 (douyin) — this refund: 淘宝 (taobao)" in out
    )
    assert "✗ price-diff-tolerance (default): kind 退差价 (price_diff)" in out
    assert "✓ unshipped-auto (default)" in out
    assert "the refund is sent once 截单 succeeded (¥128.00 is above" in out
    assert "group: ops" in out
    # The options may come after `test` as well.
    assert main(["rules", "test", "--event", str(event), "--config", str(config)]) == 0


def test_rules_test_refuses_a_bad_event_naming_the_field(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(make_refund(data_amount="12.345")), encoding="utf-8")
    assert main(["rules", "--config", str(config), "test", "--event", str(event)]) == 2
    assert "data.amount" in capsys.readouterr().err


async def test_the_rule_command_explains_a_case_in_chat(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    settings = make_settings(
        sqlite_url,
        rules=[
            {
                "name": "douyin-small",
                "platforms": ["抖音"],
                "max_amount": "30",
                "actions": ["auto_approve"],
            }
        ],
    )
    bot = await make_bot(settings)
    await bot.refund(data_amount="40.00", data_order_amount="128.00")
    reply = await bot.say("agent1", "规则 R1")
    assert reply["ok"], reply
    text = reply["reply"]["text"]
    assert text.startswith("R1 的规则判定")
    assert (
        "✗ douyin-small ([[rules]] #1): platform 抖音 (douyin) — this refund: 淘宝 (taobao)" in text
    )
    assert "✓ received-review (default): any refund" in text
    refused = await bot.say("agent1", "规则 R9")
    assert not refused["ok"]
    assert "找不到 R9" in refused["reply"]["text"]
    assert "规则" in (await bot.say("agent1", "帮助"))["reply"]["text"]

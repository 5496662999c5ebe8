"""check-config names every problem of a configuration in one run, each at its file, section
and key, with how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config_report import check_files

BROKEN = """
[server]
port = "eighty"

[sever]
port = 1

[ingest]
secret = "written-in-the-file-0123"

[bot]
admin_group = "opps"
timezone = "Asia/Shanghia"

[[groups]]
id = "ops"
channel = "wecom_aibot"
chat_id = ""
kinds = ["refunds", "payout"]

[[groups]]
id = "dy"
channel = "wechat_group"

[[groups]]
id = "tb"
channel = "dingtalk_webhook"
webhook_url = "https://oapi.dingtalk.com/robot/send"
shops = ["flagsihp"]
platforms = ["淘宝x"]

[[staff]]
id = "agent1"
roles = ["agent", "boss"]
refund_limit = -5

[[staff]]
id = "sup1"
roles = ["supervisor"]
wecom_userid = "zhangsan"

[[rules]]
name = "douyin-small"
platforms = ["抖音x"]
max_amount = 30
actions = ["auto_approve"]

[[rules]]
name = "typo"
kinds = ["refund"]
shops = ["flagshp"]
actions = ["auto_approve", "require_review"]

[commerce]
mode = "webhook"

[logistics]
stuck_in_transit_h = 200
lost_days = 5

[[shops]]
id = "flagship"
platform = "taobao"
connector = "webhook"
"""

# (where, what): one line of the report must name both.
EXPECTED = [
    ("refundops.toml [server] .port", "valid integer"),
    ("refundops.toml [sever]", "unknown key sever → did you mean 'server'?"),
    ("refundops.toml [ingest] .secret", "secret ingest.secret is written in refundops.toml"),
    (
        "refundops.toml [bot] .admin_group",
        "'opps' is not one of the [[groups]] → did you mean 'ops'?",
    ),
    ("refundops.toml [bot] .timezone", "unknown time zone 'Asia/Shanghia'"),
    (
        "refundops.toml [[groups]] #1 .kinds",
        "unknown case kind 'refunds' in kinds; did you mean 'refund'?",
    ),
    ("refundops.toml [wecom.aibot] .bot_id", "channel wecom_aibot needs wecom.aibot.bot_id"),
    ("secrets file [wecom.aibot] .secret", "REFUNDOPS_WECOM__AIBOT__SECRET"),
    ("refundops.toml [[groups]] #2 .channel", "unknown channel 'wechat_group'"),
    (
        "refundops.toml [[groups]] #3 .platforms",
        "`淘宝x` is not a platform id; did you mean `taobao`?",
    ),
    (
        "refundops.toml [[groups]] #3 .shops",
        "shop 'flagsihp' is not one of the [[shops]]; did you mean 'flagship'?",
    ),
    ("refundops.toml [[groups]] #3 .webhook_url", "webhook_url has no access_token"),
    ("secrets file [[groups]] #3 .webhook_secret", "webhook_secret is empty"),
    ("refundops.toml [[staff]] #1 .roles", "unknown role 'boss'"),
    ("refundops.toml [[staff]] #1 .refund_limit", "greater than or equal to 0"),
    ("refundops.toml [[staff]]", "no staff member has the admin role"),
    (
        "refundops.toml [[rules]] #1 .platforms",
        "`抖音x` is not a platform id; did you mean `douyin`?",
    ),
    (
        "refundops.toml [[rules]] #2 .kinds",
        "unknown refund kind 'refund'; did you mean 'refund_only'?",
    ),
    ("refundops.toml [[rules]] #2 .actions", "needs exactly one of"),
    (
        "refundops.toml [[rules]] #2 .shops",
        "shop 'flagshp' is not one of the [[shops]]; did you mean 'flagship'?",
    ),
    ("refundops.toml [commerce] .url", "commerce.url is empty"),
    ("secrets file [commerce] .secret", "missing secret commerce.secret"),
    ("refundops.toml [logistics] .stuck_in_transit_h", "not below lost_days"),
]


def test_check_config_names_every_problem_in_one_run_each_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "refundops.toml").write_text(BROKEN, encoding="utf-8")
    assert main(["check-config", "--config", "refundops.toml"]) == 2
    lines = [
        line.removeprefix("✗ ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("✗ ")
    ]
    missing = [
        (where, what)
        for where, what in EXPECTED
        if not any(line.startswith(f"{where}: ") and what in line for line in lines)
    ]
    assert missing == [], "\n".join(lines)
    # Nothing is said twice, and nothing is said of what was left out to check the rest.
    assert len(lines) == len(set(lines))
    assert not [line for line in lines if "'dy'" in line and "#2 .channel" not in line]


def test_every_problem_says_how_to_fix_it() -> None:
    report = check_files(None, None, base=_toml(BROKEN))
    hints = ("(", "→", "did you mean", "set ", "use ", "give ", "add ", "remove", "one of")
    unhinted = [f.line() for f in report.findings if not any(h in f.line() for h in hints)]
    assert unhinted == []


def test_values_from_the_environment_and_the_secrets_file_are_located_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "refundops.toml"
    config.write_text(
        '[[groups]]\nid = "ops"\nchannel = "dingtalk_webhook"\n'
        'webhook_url = "https://oapi.dingtalk.com/robot/send?access_token=t"\n'
        '[[staff]]\nid = "admin1"\nroles = ["admin"]\n',
        encoding="utf-8",
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[[groups]]\nid = "ops"\nwebhook_secret = 5\n', encoding="utf-8")
    monkeypatch.setenv("REFUNDOPS_SERVER__PORT", "eighty")
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "long-random-0123456789")
    lines = [f.line() for f in check_files(config, secrets).findings]
    assert any(
        line.startswith("REFUNDOPS_SERVER__PORT (environment) [server] .port: ") for line in lines
    ), lines
    assert any(line.startswith(f"{secrets} [[groups]] #1 .webhook_secret: ") for line in lines), (
        lines
    )


def test_a_file_that_is_not_toml_is_named_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "refundops.toml"
    config.write_text("[server]\nport = \n", encoding="utf-8")
    (finding,) = check_files(config).findings
    assert finding.where == str(config)
    assert "line 2" in finding.text


def test_a_config_whose_groups_receive_nothing_is_refused() -> None:
    report = check_files(
        None,
        base={
            "ingest": {"secret": "long-random-0123456789"},
            "groups": [
                {
                    "id": "ops",
                    "channel": "wecom_webhook",
                    "webhook_url": "https://x/?key=k",
                    "kinds": ["refunds"],
                },
                {
                    "id": "dy",
                    "channel": "wecom_webhook",
                    "webhook_url": "https://x/?key=d",
                    "shops": ["dy-1"],
                    "platforms": ["淘宝"],
                },
            ],
            "staff": [{"id": "admin1", "roles": ["admin"]}],
            "shops": [{"id": "dy-1", "platform": "抖店", "connector": "webhook"}],
        },
    )
    lines = [f.line() for f in report.findings]
    assert any(
        line.startswith(
            "config [[groups]] #2: group 'dy' receives no case: its shops ['dy-1'] are on ['douyin']"
        )
        for line in lines
    ), lines
    assert any(
        line.startswith("config [[groups]]: no [[groups]] entry receives any case")
        for line in lines
    ), lines


def test_a_good_config_has_no_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "long-random-0123456789")
    example = Path(__file__).parents[2] / "refundops.example.toml"
    report = check_files(
        example,
        base=None,
    )
    assert report.settings is not None
    assert all("aftersales" in f.text or "admin1" in f.text for f in report.findings)


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)

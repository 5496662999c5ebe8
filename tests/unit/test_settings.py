"""Settings: TOML + env overrides, secrets outside the config, and check-config's problems."""

from __future__ import annotations

import re
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from bot.cli import demo_base, main
from bot.config_check import problems
from bot.settings import ConfigError, Settings, load_settings

GOOD = """
[server]
port = 9000

[bot]
admin_group = "ops"

[[groups]]
id = "ops"
channel = "wecom_aibot"
chat_id = "wrkSFfCgAAxxxx"

[[staff]]
id = "sup1"
roles = ["supervisor", "admin"]
refund_limit = 2000
wecom_userid = "zhangsan"
"""


ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"


def write(tmp_path: Path, text: str, name: str = "refundops.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUNDOPS_SERVER__PORT", "9100")
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "from-env-0123456789")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__SECRET", "aibot-secret")
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.server.port == 9100
    assert settings.ingest.secret.get_secret_value() == "from-env-0123456789"
    assert settings.wecom.aibot.secret.get_secret_value() == "aibot-secret"
    assert settings.groups[0].chat_id == "wrkSFfCgAAxxxx"
    assert "from-env" not in repr(settings)


def test_secrets_file_fills_secrets(tmp_path: Path) -> None:
    secrets = write(
        tmp_path,
        '[ingest]\nsecret = "s-123456789"\n[wecom.aibot]\nbot_id = "b"\nsecret = "x"\n',
        "secrets.toml",
    )
    settings = load_settings(write(tmp_path, GOOD), secrets=secrets)
    assert settings.ingest.secret.get_secret_value() == "s-123456789"
    assert problems(settings) == []


def test_unknown_keys_and_inline_secrets_are_named(tmp_path: Path) -> None:
    text = GOOD + '\n[ingest]\nsecret = "inline"\n\n[sever]\nport = 1\n\n[wecom]\ncorpid = "x"\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    found = caught.value.problems
    assert "unknown key sever" in found
    assert "unknown key wecom.corpid" in found
    assert any(
        "secret ingest.secret is written in refundops.toml" in p and "REFUNDOPS_INGEST__SECRET" in p
        for p in found
    )


def test_check_config_names_each_problem() -> None:
    settings = Settings(
        ingest={"secret": ""},
        bot={"admin_group": "nowhere", "timezone": "Mars/Olympus"},
        groups=[
            {"id": "b", "channel": "wecom_aibot", "kinds": ["refunds"]},
            {"id": "c", "channel": "dingtalk_webhook"},
        ],
        staff=[{"id": "agent1", "roles": ["agent"]}],
        rules=[{"name": "r", "actions": ["auto_approve", "require_review"]}],
    )
    found = "\n".join(problems(settings))
    for expected in (
        "missing secret ingest.secret",
        "group 'b': unknown case kind 'refunds'",
        "group 'b': channel wecom_aibot needs wecom.aibot.bot_id (REFUNDOPS_WECOM__AIBOT__BOT_ID)",
        "group 'c': webhook_url is empty",
        "group 'c': webhook_secret is empty",
        "bot.admin_group 'nowhere' is not one of the [[groups]]",
        "staff[0] (agent1): no chat id for the channels in use (set wecom_userid)",
        "no staff member has the admin role",
        "rules[0] (r): needs exactly one of",
        "bot.timezone: unknown time zone 'Mars/Olympus'",
    ):
        assert expected in found, expected


def test_unknown_channel_and_role_are_refused_at_load(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[[groups]]\nid = "a"\nchannel = "wechat_group"\n'
        + '\n[[staff]]\nid = "agent1"\nroles = ["agent", "boss"]\n'
        + '\n[[rules]]\nname = "r"\nactions = ["require_review"]\nreview_role = "chief"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.problems == [
        "groups[1].channel: unknown channel 'wechat_group' (one of wecom_aibot, "
        "wecom_aibot_http, wecom_app, wecom_webhook, dingtalk_stream, dingtalk_http, "
        "dingtalk_webhook, sandbox)",
        "staff[1].roles[1]: unknown role 'boss' (one of agent, supervisor, finance, admin)",
        "rules[0].review_role: unknown role 'chief' (one of agent, supervisor, finance, admin)",
    ]


def test_check_config_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "missing secret ingest.secret" in err
    assert "wecom.aibot.secret" in err
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "long-random-0123456789")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__BOT_ID", "bot")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__SECRET", "bot-secret")
    assert main(["check-config", "--config", str(path)]) == 0
    assert "config ok" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0


def test_placeholder_secret_refused_outside_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "demo-secret")
    demo = load_settings(base=demo_base(), demo=True)
    assert problems(demo) == []
    serious = load_settings(base=demo_base())
    assert any("placeholder" in p for p in problems(serious))


def documented_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(table header, key) for every setting below `model`."""
    found: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        item = args[0] if get_origin(annotation) in (list, Union, UnionType) and args else None
        if get_origin(item) is list:
            item = get_args(item)[0]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += documented_keys(annotation, f"{prefix}{name}.")
        elif isinstance(item, type) and issubclass(item, BaseModel):
            found += [(f"[{prefix}{name}]]", key) for _, key in documented_keys(item)]
        else:
            found.append((f"[{prefix.rstrip('.')}]", name))
    return found


def test_example_config_documents_every_key_and_loads() -> None:
    example = Path(__file__).parents[2] / "refundops.example.toml"
    settings = load_settings(example)
    text = example.read_text(encoding="utf-8")
    for header, key in documented_keys(Settings):
        if header == "[]":
            continue
        table = "[" + header if header.endswith("]]") else header
        assert table in text, table
        section = text[text.index(table) :]
        assert re.search(rf"^#? ?{key} =", section, re.MULTILINE), f"{table} {key}"
    assert settings.groups
    assert settings.staff


def test_check_config_names_carrier_and_logistics_problems() -> None:
    settings = Settings(
        ingest={"secret": "long-random-0123456789"},
        groups=[{"id": "ops", "channel": "wecom_webhook", "webhook_url": ROBOT}],
        staff=[{"id": "admin1", "roles": ["admin"]}],
        carrier={"mode": "webhook", "kuaidi100_salt": "changeme"},
        logistics={"stuck_in_transit_h": 200, "lost_days": 5},
    )
    found = "\n".join(problems(settings))
    for expected in (
        "carrier.url is empty but carrier.mode is 'webhook'",
        "missing secret carrier.secret (set REFUNDOPS_CARRIER__SECRET)",
        "carrier.kuaidi100_salt is a placeholder",
        "logistics.stuck_in_transit_h is not below lost_days",
    ):
        assert expected in found, expected
    fine = Settings(
        ingest={"secret": "long-random-0123456789"},
        groups=[{"id": "ops", "channel": "wecom_webhook", "webhook_url": ROBOT}],
        staff=[{"id": "admin1", "roles": ["admin"]}],
        carrier={"mode": "webhook", "url": "https://erp.example/intercepts", "secret": "s3cret-x"},
    )
    assert problems(fine) == []


def test_a_group_without_its_chat_id_yet_is_warned_about_and_takes_no_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", "long-random-0123456789")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__BOT_ID", "bot")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__SECRET", "bot-secret")
    text = GOOD + '\n[[groups]]\nid = "aftersales"\nchannel = "wecom_aibot"\nkinds = ["refund"]\n'
    path = write(tmp_path, text)
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr()
    assert "config ok" in out.out
    assert "! group 'aftersales': no chat_id yet, so no case is routed to it." in out.err
    settings = load_settings(path)
    assert problems(settings) == []
    (aftersales,) = [g for g in settings.groups if g.id == "aftersales"]
    assert aftersales.awaiting_chat_id
    assert settings.route(shop="s", platform="taobao", kind="refund") == settings.group("ops")
    # A touser list is not learnt by @-mention: an empty one is still refused.
    app = GOOD + '\n[[groups]]\nid = "approvals"\nchannel = "wecom_app"\n'
    assert any("chat_id is empty" in p for p in problems(load_settings(write(tmp_path, app))))

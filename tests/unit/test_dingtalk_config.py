"""check-config for the DingTalk channels: every missing key named as config and env spell it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config_check import problems, warnings
from bot.settings import Settings, load_settings

SECRET = "long-random-0123456789"


def settings(**overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "ingest": {"secret": SECRET},
        "groups": [
            {"id": "s", "channel": "dingtalk_stream"},
            {"id": "h", "channel": "dingtalk_http", "chat_id": "cidHTTP=="},
            {
                "id": "w",
                "channel": "dingtalk_webhook",
                "webhook_url": "https://oapi.dingtalk.com/robot/send",
            },
        ],
        "staff": [{"id": "admin1", "roles": ["admin"]}],
    }
    return Settings(**(data | overrides))


def test_missing_dingtalk_keys_are_each_named() -> None:
    found = "\n".join(problems(settings()))
    for expected in (
        "group 's': channel dingtalk_stream needs dingtalk.app_key (REFUNDOPS_DINGTALK__APP_KEY)",
        "group 's': channel dingtalk_stream needs dingtalk.app_secret (REFUNDOPS_DINGTALK__APP_SECRET)",
        "group 's': channel dingtalk_stream needs dingtalk.robot_code",
        "group 's': channel dingtalk_stream needs dingtalk.card_template_id",
        "group 'h': channel dingtalk_http needs dingtalk.corp_id (REFUNDOPS_DINGTALK__CORP_ID)",
        "group 'h': channel dingtalk_http needs server.public_base_url (REFUNDOPS_SERVER__PUBLIC_BASE_URL)",
        "group 'w': webhook_secret is empty",
        "group 'w': webhook_url has no access_token",
        "staff[0] (admin1): no chat id for the channels in use (set dingtalk_staff_id)",
    ):
        assert expected in found, expected
    assert "group 's': channel dingtalk_stream needs dingtalk.corp_id" not in found
    # A group set up before it is known is a warning: the bot tells its id when @-mentioned.
    assert "chat_id" not in found
    (waiting, no_agent) = warnings(settings())
    assert waiting.startswith("group 's': no chat_id yet, so no case is routed to it.")
    assert "@-mention the bot in that group" in waiting
    assert no_agent.startswith("dingtalk.agent_id is not set")


def test_a_complete_dingtalk_config_has_no_problems() -> None:
    complete = settings(
        server={"public_base_url": "https://refundops.example.com"},
        dingtalk={
            "app_key": "dingkey",
            "app_secret": "ding-secret",
            "corp_id": "dingcorp",
            "robot_code": "dingkey",
            "card_template_id": "abc.schema",
        },
        groups=[
            {"id": "s", "channel": "dingtalk_stream", "chat_id": "cidS=="},
            {"id": "h", "channel": "dingtalk_http", "chat_id": "cidH=="},
            {
                "id": "w",
                "channel": "dingtalk_webhook",
                "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=abc",
                "webhook_secret": "SECabc",
            },
        ],
        staff=[{"id": "admin1", "roles": ["admin"], "dingtalk_staff_id": "manager01"}],
    )
    assert problems(complete) == []
    assert warnings(complete) == [warnings(settings())[-1]]
    with_agent = complete.model_copy(
        update={"dingtalk": complete.dingtalk.model_copy(update={"agent_id": 3100001})}
    )
    assert warnings(with_agent) == []


def test_a_webhook_secret_in_the_secrets_file_joins_its_group(tmp_path: Path) -> None:
    config = tmp_path / "refundops.toml"
    config.write_text(
        '[[groups]]\nid = "aftersales"\nchannel = "sandbox"\n\n'
        '[[groups]]\nid = "managers"\nchannel = "dingtalk_webhook"\n'
        'webhook_url = "https://oapi.dingtalk.com/robot/send?access_token=abc"\n',
        encoding="utf-8",
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[ingest]\nsecret = "long-random-0123456789"\n\n'
        '[[groups]]\nid = "managers"\nwebhook_secret = "SECabc"\n',
        encoding="utf-8",
    )
    loaded = load_settings(config, secrets=secrets)
    assert [(g.id, g.channel) for g in loaded.groups] == [
        ("aftersales", "sandbox"),
        ("managers", "dingtalk_webhook"),
    ]
    managers = loaded.group("managers")
    assert managers is not None
    assert managers.webhook_secret.get_secret_value() == "SECabc"
    assert managers.webhook_url.endswith("access_token=abc")

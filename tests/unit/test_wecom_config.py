"""check-config for the WeCom channels: each channel names the keys it still needs."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config_check import channel_needs, problems
from bot.settings import Settings
from tests.support.wecom import AES_KEY

STAFF = [{"id": "sup1", "roles": ["supervisor", "admin"], "wecom_userid": "zhangsan"}]


def settings(channel: str, group: dict[str, Any] | None = None, **wecom: Any) -> Settings:
    return Settings(
        ingest={"secret": "long-random-0123456789"},
        groups=[{"id": "g", "channel": channel, "chat_id": "wrkX", **(group or {})}],
        staff=STAFF,
        wecom=wecom,
    )


@pytest.mark.parametrize(
    ("channel", "needed"),
    [
        ("wecom_aibot", ["wecom.aibot.bot_id", "wecom.aibot.secret"]),
        ("wecom_aibot_http", ["wecom.aibot.token", "wecom.aibot.encoding_aes_key"]),
        (
            "wecom_app",
            [
                "wecom.corp_id",
                "wecom.agent_id",
                "wecom.secret",
                "wecom.token",
                "wecom.encoding_aes_key",
            ],
        ),
        ("wecom_webhook", []),
    ],
)
def test_each_channel_names_its_missing_keys(channel: str, needed: list[str]) -> None:
    found = channel_needs(settings(channel), channel)
    assert [n.split(" needs ")[1].split(" ")[0] for n in found] == needed
    for need, key in zip(found, needed, strict=True):
        assert f"(REFUNDOPS_{key.upper().replace('.', '__')})" in need


def test_complete_wecom_settings_have_no_problems() -> None:
    full = settings(
        "wecom_app",
        {"chat_id": "sup1|lisi"},
        corp_id="ww1",
        agent_id=1000002,
        secret="s",
        token="t",
        encoding_aes_key=AES_KEY,
    )
    assert problems(full) == []


def test_wecom_specific_problems() -> None:
    broken = settings("wecom_app", {"chat_id": "sup1|nobody"}, encoding_aes_key="too-short")
    found = "\n".join(problems(broken))
    assert "wecom.encoding_aes_key is not a valid EncodingAESKey" in found
    staff_without_id = Settings(
        groups=[{"id": "g", "channel": "wecom_app", "chat_id": "sup1|agent9"}],
        staff=[*STAFF, {"id": "agent9", "roles": ["agent"], "dingtalk_staff_id": "d9"}],
    )
    assert "group 'g': chat_id names agent9, who has no wecom_userid" in problems(staff_without_id)
    http = "\n".join(problems(settings("wecom_aibot_http")))
    assert "group 'g': webhook_url is empty (the AI bot's HTTP mode cannot post by itself" in http
    webhook = "\n".join(problems(settings("wecom_webhook")))
    assert "group 'g': webhook_url is empty" in webhook

"""Two [[staff]] entries with one WeCom or DingTalk account: check-config names both, and
until it is fixed the account is nobody's (it would otherwise act as whichever came last)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config_check import problems
from bot.registry import commands
from bot.settings import Settings
from commands import ChatInput
from tests.support.app import BotFactory, make_refund, make_settings

ROUTER = commands()

SECRET = "a-long-random-ingest-secret-0123456789"
STAFF = [
    {"id": "agent1", "roles": ["agent"], "refund_limit": "50", "wecom_userid": "ZhangSan"},
    {"id": "sup1", "roles": ["supervisor"], "refund_limit": "2000", "wecom_userid": "zhangsan"},
    {"id": "fin1", "roles": ["finance"], "wecom_userid": "lisi", "dingtalk_staff_id": "d-7"},
    {"id": "admin1", "roles": ["admin"], "wecom_userid": "wangwu", "dingtalk_staff_id": "d-7"},
]
CONFIG = """
[bot]
admin_group = "aftersales"

[[groups]]
id = "aftersales"
channel = "wecom_aibot"
chat_id = "wrk1"

[[staff]]
id = "sup1"
roles = ["supervisor"]
refund_limit = 2000
wecom_userid = "zhangsan"

[[staff]]
id = "admin1"
roles = ["admin"]
wecom_userid = "zhangsan"
"""


def test_config_check_names_every_shared_identity() -> None:
    settings = Settings(
        ingest={"secret": SECRET},
        groups=[{"id": "aftersales", "channel": "wecom_aibot", "chat_id": "wrk1"}],
        staff=STAFF,
    )
    found = problems(settings)
    assert (
        "staff[1] (sup1): wecom_userid 'zhangsan' is also staff[0] (agent1)'s: one WeCom "
        "account would act as both; give each person their own"
    ) in found
    assert (
        "staff[3] (admin1): dingtalk_staff_id 'd-7' is also staff[2] (fin1)'s: one DingTalk "
        "account would act as both; give each person their own"
    ) in found
    assert len([p for p in found if "would act as both" in p]) == 2


def test_config_check_config_exits_non_zero_on_a_shared_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFUNDOPS_INGEST__SECRET", SECRET)
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__BOT_ID", "bot")
    monkeypatch.setenv("REFUNDOPS_WECOM__AIBOT__SECRET", "bot-secret-0123")
    path = tmp_path / "refundops.toml"
    path.write_text(CONFIG, encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "staff[1] (admin1): wecom_userid 'zhangsan' is also staff[0] (sup1)'s" in (
        capsys.readouterr().err
    )


async def test_config_a_shared_identity_acts_as_nobody(
    make_bot: BotFactory, sqlite_url: str
) -> None:
    bot = await make_bot(make_settings(sqlite_url, staff=STAFF))
    await bot.post_event(make_refund(data_amount="1800.00", data_order_amount="1800.00"))
    await bot.drain()
    for user in ("zhangsan", "ZhangSan"):
        chat = ChatInput(
            channel="wecom_aibot",
            platform="wecom",
            user=user,
            text="通过 R1",
            group_id="aftersales",
        )
        reply = await ROUTER.handle(bot.svc, chat)
        assert not reply.ok
        assert reply.text.startswith("你不在售后名单中")
    async with bot.svc.tx() as tx:
        case = await tx.cases.find("R1")
        assert case is not None
        assert case.state == "awaiting_review"
    assert bot.svc.staff.by_platform("wecom", "lisi").id == "fin1"
    assert bot.svc.staff.by_platform("dingtalk", "d-7") is None

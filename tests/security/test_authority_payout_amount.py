"""Chat `打款` amounts: the ingest cap, and a usage hint (never "处理出错了") for anything else."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from handlers.errors import UsageError
from handlers.money import MAX_AMOUNT_FEN
from handlers.payout import flow as payout
from storage.models import Case
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.payout import GROUPS

LIMIT = "¥100,000,000.00"


@pytest.fixture
async def pbot(make_bot: BotFactory, sqlite_url: str) -> Bot:
    return await make_bot(make_settings(sqlite_url, groups=GROUPS))


async def payouts(bot: Bot) -> int:
    async with bot.svc.tx() as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(Case)) or 0)


@pytest.mark.parametrize(
    "amount",
    [
        "1e30",
        "1E+2",
        "1e99999999999999",
        "NaN",
        "sNaN",
        "inf",
        "-Infinity",
        "-5",
        "0",
        "5.001",
        "100000000.01",
        "999999999999999999999",
        "0x10",
        "1_000",
    ],
)
async def test_authority_payout_amount_outside_the_cap_gets_the_usage_hint(
    pbot: Bot, amount: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        answer = await pbot.say("agent1", f"打款 返现 T1 {amount} 13800138000 王小明 活动返现")
    text = answer["reply"]["text"]
    assert not answer["ok"]
    assert "处理出错了" not in text
    assert f"金额「{amount}」不对" in text
    assert LIMIT in text
    assert "用法：打款 " in text
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await payouts(pbot) == 0


@pytest.mark.parametrize(("amount", "shown"), [("100000000", LIMIT), ("￥12.5", "¥12.50")])
async def test_authority_payout_amount_up_to_the_cap_is_accepted(
    pbot: Bot, amount: str, shown: str
) -> None:
    answer = await pbot.say("agent1", f"打款 返现 T1 {amount} 13800138000 王小明 活动返现")
    assert answer["ok"], answer
    assert f"活动返现 {shown} →" in answer["reply"]["text"]


def test_authority_the_cap_is_the_ingest_cap() -> None:
    assert MAX_AMOUNT_FEN == 10_000_000_000


async def test_authority_the_payout_handler_refuses_an_amount_above_the_cap(pbot: Bot) -> None:
    new = payout.NewPayout(
        payout_id="P-over-cap",
        kind="cashback",
        order_id="T1",
        amount_fen=MAX_AMOUNT_FEN + 1,
        payee_name="王小明",
        payee_account="13800138000",
        reason="活动返现",
        requested_by="agent1",
    )
    async with pbot.svc.tx() as tx:
        with pytest.raises(UsageError, match=re.escape(f"不超过 {LIMIT}")):
            await payout.start_payout(tx, new, chat_group="finance", channel="sandbox")
    assert await payouts(pbot) == 0

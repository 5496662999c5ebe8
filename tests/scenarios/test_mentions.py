"""Who gets @-mentioned: a refusal calls on the person refused, never those who could do it
(they are named); an escalation calls on each person once per case, and the case keeps who."""

from __future__ import annotations

from handlers.case_data import CaseData
from tests.support.app import Bot

DEADLINE_IN_8H = "2026-11-23T18:00:00+08:00"  # the fake clock starts at 10:00 +08:00


async def mentioned(bot: Bot, handle: str) -> dict[str, list[str]]:
    async with bot.svc.tx() as tx:
        case = await tx.cases.find(handle)
        assert case is not None
        return CaseData.of(case).mentioned


async def test_a_refusal_calls_on_the_person_refused_only(bot: Bot) -> None:
    card = await bot.refund(data_deadline_at=None)
    over = await bot.say("agent1", "通过 R1")
    assert over["ok"]
    refused = await bot.say("agent2", "通过 R1")
    assert not refused["ok"]
    text = refused["reply"]["text"]
    assert text.startswith("@agent2 ¥128.00 超出 agent2 的退款权限（¥50.00）。可以批准的是：sup1")
    assert text.count("@") == 1
    not_allowed = await bot.say("fin1", "通过 R1")
    assert not_allowed["reply"]["text"].startswith("@fin1 fin1 没有")
    assert not_allowed["reply"]["text"].count("@") == 1
    _, tapped = await bot.click("agent2", card["id"], "approve")
    assert tapped["reply"]["text"].startswith("@agent2 ¥128.00 超出")
    assert tapped["reply"]["text"].count("@") == 1
    # A usage hint is an answer, not a call on anyone.
    assert (await bot.say("agent2", "通过"))["reply"]["text"] == "用法：通过 <单号> [更多单号 备注]"


async def test_an_escalation_calls_the_supervisors_and_the_case_keeps_who(bot: Bot) -> None:
    await bot.refund(data_deadline_at=None)
    reply = await bot.say("agent1", "通过 R1")
    assert reply["reply"]["text"].startswith("@sup1 @sup2 @admin1 R1 ¥128.00 超出你的权限")
    assert await mentioned(bot, "R1") == {"escalate": ["sup1", "sup2", "admin1"]}


async def test_deadline_warnings_call_each_person_once_per_stage(bot: Bot) -> None:
    await bot.refund(data_deadline_at=DEADLINE_IN_8H)
    six = [t for t in await bot.later(hours=2) if "⏳" in t]
    assert [t.split(" ⏳")[0] for t in six] == ["@sup1 @sup2 @admin1"]
    one = [t for t in await bot.later(hours=5) if "⏳" in t]
    # The last warning escalates to the supervisors: a new call, once.
    assert [t.split(" ⏳")[0] for t in one] == ["@sup1 @sup2 @admin1"]
    passed = [t for t in await bot.later(hours=1) if "已过平台处理时限" in t]
    assert [t.startswith("⛔ R1") for t in passed] == [True]
    assert await mentioned(bot, "R1") == {
        "first_response": ["sup1", "sup2", "admin1"],
        "first_response:escalate": ["sup1", "sup2", "admin1"],
        "deadline_warn": ["sup1", "sup2", "admin1"],
        "deadline": ["sup1", "sup2", "admin1"],
    }

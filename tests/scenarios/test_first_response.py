"""First response through the app: a rule's decision and a claim leave the clock running; a
reply to the buyer or a person's decision stops it."""

from __future__ import annotations

from datetime import datetime

from storage.models import Case
from tests.support.app import Bot


async def case(bot: Bot, handle: str) -> Case:
    async with bot.svc.tx() as tx:
        found: Case | None = await tx.cases.find(handle)
        assert found is not None
        return found


async def responded_at(bot: Bot, handle: str) -> datetime | None:
    return (await case(bot, handle)).first_response_at


async def test_a_rule_decision_is_no_response(bot: Bot) -> None:
    card = await bot.refund(
        data_shipping={"status": "unshipped"}, data_amount="30.00", data_order_amount="30.00"
    )
    assert card["state"] in ("auto_approved", "manual_refund")
    assert (await case(bot, "R1")).decided_by.startswith("rule:")
    assert await responded_at(bot, "R1") is None
    # Nobody waits on a person here: no first-response reminder either.
    assert [t for t in await bot.later(hours=2) if "无人响应" in t] == []


async def test_a_claim_is_no_response(bot: Bot) -> None:
    await bot.refund()
    bot.clock.advance(minutes=5)
    assert (await bot.say("agent1", "认领 R1"))["ok"]
    assert await responded_at(bot, "R1") is None


async def test_a_reply_to_the_buyer_is_a_response(bot: Bot) -> None:
    await bot.refund()
    bot.clock.advance(minutes=7)
    assert (await bot.say("agent1", "回复 R1 亲，正在核实"))["ok"]
    assert await responded_at(bot, "R1") == bot.clock.now()
    assert [t for t in await bot.later(hours=2) if "无人响应" in t] == []


async def test_a_persons_approval_is_a_response(bot: Bot) -> None:
    await bot.refund(data_amount="40.00", data_order_amount="128.00")
    bot.clock.advance(minutes=12)
    assert (await bot.say("agent1", "通过 R1"))["ok"]
    assert await responded_at(bot, "R1") == bot.clock.now()
    assert (await case(bot, "R1")).decided_by == "agent1"

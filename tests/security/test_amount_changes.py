"""Attacks on the amount of a refund: `refund.updated` raising it under a decision, or past the
order; the ERP only ever receives the amount someone (or a rule) approved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DISPATCHER, PROCESSOR
from integrations.commerce.fake import FakeCommerce
from storage.models import AuditEntry, Case
from tests.support.app import Bot, BotFactory, make_settings
from tests.support.fakes import Served


@pytest.fixture
async def shop(
    make_bot: BotFactory, db_url: str, fake_commerce: Served[FakeCommerce]
) -> tuple[Bot, FakeCommerce]:
    fake, url = fake_commerce
    settings = make_settings(
        db_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    return await make_bot(settings), fake


async def update(bot: Bot, refund_id: str, *, drain: bool = True, **data: Any) -> None:
    envelope = {
        "id": f"evt_upd_{refund_id}_{len(data)}_{sorted(data.items())}"[:128],
        "type": "refund.updated",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": refund_id, **data},
    }
    assert (await bot.post_event(envelope))[0] == 202
    if drain:
        await bot.drain()


async def case_of(bot: Bot, handle: str = "R1") -> Case:
    async with bot.svc.tx() as tx:
        case: Case | None = await tx.cases.find(handle)
    assert case is not None
    return case


async def card_of(bot: Bot, handle: str = "R1") -> dict[str, Any]:
    return next(c for c in await bot.cards() if c["handle"] == handle)


async def actions(bot: Bot) -> list[str]:
    async with bot.svc.tx() as tx:
        rows = (await tx.session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [r.action for r in rows]


def amounts(fake: FakeCommerce) -> list[str]:
    return [str(e["data"]["amount"]) for e in fake.performed("approve_refund")]


async def test_amount_past_the_order_after_approval_is_refused_and_the_erp_gets_the_approved(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="128.00")
    assert (await bot.say("agent1", f"通过 {card['handle']}"))["ok"]
    await update(bot, card["case_id"], amount="4800.00")
    assert amounts(fake) == ["40.00"]
    case = await case_of(bot)
    assert case.amount_fen == 4000
    assert case.state == "refunded"
    assert "amount_refused" in await actions(bot)
    lines = (await card_of(bot))["card"]["lines"]
    assert any("¥4,800.00" in line and "未采用" in line for line in lines), lines
    assert any("¥4,800.00" in t and "未采用" in t for t in await bot.texts())


async def test_amount_raised_after_approval_reopens_review_before_the_erp_is_called(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="5000.00")
    assert (await bot.say("agent1", "通过 R1"))["ok"]
    # The approval's ERP call is queued; the update is applied before it is sent.
    await update(bot, card["case_id"], amount="4800.00")
    assert fake.performed("approve_refund") == []
    case = await case_of(bot)
    assert (case.state, case.amount_fen) == ("awaiting_review", 480000)
    assert "reopen" in await actions(bot)
    shown = await card_of(bot)
    assert shown["card"]["title"].endswith("¥4,800.00")
    assert any(
        "金额已变更 ¥40.00 → ¥4,800.00" in li and "重新审核" in li for li in shown["card"]["lines"]
    )

    refused = await bot.say("agent1", "通过 R1")
    assert "超出你的权限" in refused["reply"]["text"]
    await bot.drain()
    assert fake.performed("approve_refund") == []
    assert (await bot.say("admin1", "通过 R1"))["ok"]
    await bot.drain()
    (sent,) = fake.performed("approve_refund")
    assert sent["data"]["amount"] == "4800.00"
    assert sent["idempotency_key"].endswith(":2"), "a fresh key: the withdrawn one is never reused"
    assert (await case_of(bot)).state == "refunded"


async def test_amount_raised_while_the_erp_call_is_in_flight_is_flagged_never_sent_again(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="5000.00")
    assert (await bot.say("agent1", "通过 R1"))["ok"]
    gate = asyncio.Event()
    fake.gate = gate
    sending = asyncio.create_task(bot.app[DISPATCHER].run_once())
    for _ in range(200):
        if fake.requests:
            break
        await asyncio.sleep(0.01)
    assert fake.requests, "the ERP call is under way"
    await update(bot, card["case_id"], amount="4800.00", drain=False)
    assert await bot.app[PROCESSOR].run_once() == 1
    gate.set()
    await sending
    await bot.drain()
    assert amounts(fake) == ["40.00"]
    case = await case_of(bot)
    assert case.state == "refunded"
    assert case.amount_fen == 480000
    assert "reopen" not in await actions(bot)
    lines = (await card_of(bot))["card"]["lines"]
    assert any("¥40.00 → ¥4,800.00" in li and "不会再次" in li for li in lines), lines
    fields = {f["label"]: f["value"] for f in (await card_of(bot))["card"]["fields"]}
    assert fields["批准金额"] == "¥40.00"


async def test_amount_raised_after_the_erp_took_the_refund_is_flagged_for_a_person(
    make_bot: BotFactory, sqlite_url: str, fake_commerce: Served[FakeCommerce]
) -> None:
    fake, url = fake_commerce
    fake.status = "pending"
    settings = make_settings(
        sqlite_url, commerce={"mode": "webhook", "url": url, "secret": fake.secret}
    )
    bot = await make_bot(settings)
    card = await bot.refund(data_amount="40.00", data_order_amount="5000.00")
    await bot.click("agent1", card["id"], "approve")
    await bot.drain()
    assert (await case_of(bot)).state == "submitted"
    await update(bot, card["case_id"], amount="4800.00")
    assert amounts(fake) == ["40.00"]
    assert (await case_of(bot)).state == "submitted"
    lines = (await card_of(bot))["card"]["lines"]
    assert any("¥40.00 → ¥4,800.00" in li and "不会再次" in li for li in lines), lines
    told = [t for t in await bot.texts() if "¥4,800.00" in t]
    assert told
    assert "@sup1" in told[0]
    assert "@agent1" not in told[0]


async def test_failed_refund_whose_amount_rises_goes_back_to_review_not_to_retry(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="5000.00")
    fake.refuse["approve_refund"] = "余额不足"
    assert (await bot.say("agent1", "通过 R1"))["ok"]
    await bot.drain()
    assert (await case_of(bot)).state == "failed"
    fake.refuse.clear()
    await update(bot, card["case_id"], amount="4800.00")
    assert (await case_of(bot)).state == "awaiting_review"
    retried = await bot.say("agent1", "重试 R1")
    assert not retried["ok"] or "超出你的权限" in retried["reply"]["text"]
    await bot.drain()
    assert fake.performed("approve_refund") == []


async def test_a_99_return_is_never_auto_refunded_at_9900(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(
        data_kind="return_refund", data_amount="99.00", data_order_amount="99.00"
    )
    assert card["state"] == "waiting_return"
    await update(bot, card["case_id"], amount="9900.00")
    await update(bot, card["case_id"], amount="9900.00", order_amount="9900.00")
    await update(bot, card["case_id"], return_status="received")
    await update(bot, card["case_id"], return_status="qc_passed")
    assert amounts(fake) == ["99.00"]
    case = await case_of(bot)
    assert (case.amount_fen, case.data["order_amount_fen"]) == (9900, 9900)
    assert (await actions(bot)).count("amount_refused") == 2


async def test_an_order_amount_lowered_below_the_refund_is_refused(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, fake = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="128.00")
    await update(bot, card["case_id"], order_amount="20.00")
    case = await case_of(bot)
    assert (case.amount_fen, case.data["order_amount_fen"]) == (4000, 12800)
    assert "amount_refused" in await actions(bot)
    assert fake.performed("approve_refund") == []


async def test_an_update_carrying_both_amounts_must_be_consistent_at_the_door(
    shop: tuple[Bot, FakeCommerce],
) -> None:
    bot, _ = shop
    card = await bot.refund(data_amount="40.00", data_order_amount="128.00")
    envelope = {
        "id": "evt_upd_both",
        "type": "refund.updated",
        "occurred_at": bot.clock.now().isoformat(),
        "data": {"refund_id": card["case_id"], "amount": "4800.00", "order_amount": "128.00"},
    }
    status, body = await bot.post_event(envelope)
    assert status == 400
    assert [e["field"] for e in body["fields"]] == ["data.order_amount"]
